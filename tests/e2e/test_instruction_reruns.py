"""Reruns and approvals of instruction runs through the real gateway, dev server, workers,
local targets (which count every call) and the fake LLM server."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from gateway.client import AsyncWorkflowStationClient, Conflict
from tests.conftest import Gateway, Targets, unique, wait_until
from tests.e2e.test_cli import invoke
from tests.fakes.llm_server import FakeLLMServer
from workflows.instructions.workflow import InstructionWorkflow


def record(targets: Targets, key: str, **fields: Any) -> dict[str, Any]:
    return {"type": "endpoint", "apiUrl": f"{targets.url}/record/{key}", "retries": 0, **fields}


async def start(gateway: Gateway, instructions: list[Any], context: str = "ctx") -> str:
    response = await gateway.http.post("/", json={"context": context, "instructions": instructions})
    assert response.status_code == 200, response.text
    instance_id: str = response.json()["instanceId"]
    return instance_id


async def ended(gateway: Gateway, workflow_id: str) -> dict[str, Any]:
    async def status() -> dict[str, Any] | None:
        answer = (await gateway.http.get(f"/runs/{workflow_id}")).json()
        return answer if answer["status"] in ("complete", "errored", "terminated") else None

    result: dict[str, Any] = await wait_until(status, timeout=60)
    return result


async def test_a_run_failing_at_its_last_instruction_is_rerun_without_calling_the_others(
    gateway: Gateway, targets: Targets
):
    key = unique("ichain")
    broken = {"type": "endpoint", "apiUrl": f"{targets.url}/status/{key}-broken/404"}
    source = await start(gateway, [record(targets, f"{key}-{i}") for i in range(3)] + [broken])
    failed = await ended(gateway, source)
    assert failed["status"] == "errored" and failed["error"]["step"] == 3

    fixed = {
        "apiUrl": f"{targets.url}/echo/{key}-3",
        "method": "POST",
        "body": {"before": "{{result}}"},
    }
    response = await gateway.http.post(f"/runs/{source}/rerun", json={"instructions": {"3": fixed}})
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["workflow_id"] == f"{source}.rerun-1"
    assert (accepted["rerun_of"], accepted["reused"], accepted["rerun"]) == (
        source,
        ["0", "1", "2"],
        ["3"],
    )
    result = await ended(gateway, accepted["workflow_id"])
    assert result["status"] == "complete", result["error"]
    assert result["rerunOf"] == source
    assert result["reuse"] == {
        "steps_reused": 3,
        "calls_saved": 3,
        "tokens_saved": 0,
        "unchanged": [],
    }
    assert [step["reusedFrom"] for step in result["steps"]] == [source, source, source, None]
    assert result["executionOrder"] == [0, 1, 2, 3]
    # Instructions 0-2 made no call again; the edited one read instruction 2's reused result.
    assert [targets.state.calls[f"{key}-{i}"] for i in range(4)] == [1, 1, 1, 1]
    assert json.loads(targets.state.requests[f"{key}-3"][-1]["json"]["before"]) == {
        "ok": True,
        "calls": 1,
    }
    # With no edit and nothing unfinished, the rerun reuses every step.
    again = (await gateway.http.post(f"/runs/{accepted['workflow_id']}/rerun", json={})).json()
    assert again["reused"] == ["0", "1", "2", "3"] and again["rerun"] == []
    done = await ended(gateway, again["workflow_id"])
    assert done["status"] == "complete" and done["steps"][0]["reusedFrom"] == source
    assert targets.state.calls[f"{key}-3"] == 1


async def test_rerun_from_an_instruction_after_a_jump_starts_with_the_sources_state(
    gateway: Gateway, targets: Targets
):
    key = unique("ijump")
    jump = {"expression": "result contains 'ok'", "ifTrue": [2], "ifFalse": [3]}
    instructions = [
        record(targets, f"{key}-a", condition=jump),
        record(targets, f"{key}-b"),
        {
            "type": "endpoint",
            "apiUrl": f"{targets.url}/echo/{key}-c",
            "method": "POST",
            "body": {"seen": "{{result}}"},
        },
        record(targets, f"{key}-d"),
        {"type": "thread", "collectFromSteps": [0, 2], "outputFormat": "json"},
    ]
    source = await start(gateway, instructions)
    first = await ended(gateway, source)
    assert first["executionOrder"] == [0, 2, 1, 4]

    response = await gateway.http.post(f"/runs/{source}/rerun", json={"from_instruction": 2})
    assert response.status_code == 202, response.text
    assert (response.json()["reused"], response.json()["rerun"]) == (["0"], ["2", "1", "4"])
    result = await ended(gateway, response.json()["workflow_id"])
    assert result["status"] == "complete"
    assert result["executionOrder"] == [0, 2, 1, 4]
    # The thread collected the reused result beside the one made again.
    collected = json.loads(result["output"])
    assert [item["step"] for item in collected] == [0, 2]
    assert json.loads(collected[0]["result"]) == {"ok": True, "calls": 1}
    assert result["steps"][0]["condition"]["verdict"] is True
    assert result["steps"][3]["status"] == "skipped"
    calls = {name: targets.state.calls[f"{key}-{name}"] for name in "abcd"}
    assert calls == {"a": 1, "b": 2, "c": 2, "d": 0}
    # Instruction 2 saw instruction 0's reused result, as in the source.
    seen = [json.loads(r["json"]["seen"]) for r in targets.state.requests[f"{key}-c"]]
    assert seen == [{"ok": True, "calls": 1}] * 2


async def test_rerun_saves_the_tokens_of_reused_llm_instructions(
    llm_gateway: Gateway, fake_llm: FakeLLMServer, targets: Targets
):
    key = unique("illm")
    fake_llm.when("Summarise").reply("SUMMARY", usage=(7, 3))
    broken = {"type": "endpoint", "apiUrl": f"{targets.url}/status/{key}/400"}
    source = await start(llm_gateway, ["Summarise the text", broken])
    assert (await ended(llm_gateway, source))["status"] == "errored"
    assert len(fake_llm.requests) == 1

    fixed = {"apiUrl": f"{targets.url}/echo/{key}-fixed", "method": "POST", "body": "{{result}}"}
    async with AsyncWorkflowStationClient(llm_gateway.url) as client:
        accepted = await client.rerun(source, instructions={1: fixed})
    assert accepted.reused == ["0"]
    result = await ended(llm_gateway, accepted.workflow_id)
    assert result["status"] == "complete", result["error"]
    assert result["reuse"] == {
        "steps_reused": 1,
        "calls_saved": 1,
        "tokens_saved": 10,
        "unchanged": [],
    }
    assert len(fake_llm.requests) == 1  # the model was not asked again
    assert targets.state.requests[f"{key}-fixed"][-1]["json"] == "SUMMARY"


async def test_rerun_refuses_the_other_engines_fields_and_invalid_edits(
    gateway: Gateway, targets: Targets
):
    key = unique("irefuse")
    source = await start(gateway, [record(targets, key), record(targets, f"{key}-2")])
    await ended(gateway, source)

    async def refused(body: dict[str, Any]) -> str:
        response = await gateway.http.post(f"/runs/{source}/rerun", json=body)
        assert response.status_code == 422, response.text
        return json.dumps(response.json()["detail"])

    assert "from_step: only DAG runs" in await refused({"from_step": "s1"})
    assert "instructions[1].method" in await refused({"instructions": {"1": {"method": "FETCH"}}})
    assert "no instruction '7'" in await refused({"instructions": {"7": {"method": "GET"}}})
    assert "instruction 5 did not run" in await refused({"from_instruction": 5})

    dag = {
        "workflow_id": unique("dag"),
        "STEPS_CONFIG": [
            {"step_name": "s1", "usid": "u1", "service_url": f"{targets.url}/record/{key}-dag"}
        ],
    }
    await gateway.http.post("/execute", json=dag)
    response = await gateway.http.post(
        f"/runs/{dag['workflow_id']}/rerun", json={"from_instruction": 0}
    )
    assert response.status_code == 422
    assert "from_instruction: only instruction runs" in response.text
    assert targets.state.calls[key] == 1


async def test_the_cli_reruns_an_instruction_run_from_an_index(gateway: Gateway, targets: Targets):
    key = unique("icli")
    source = await start(gateway, [record(targets, f"{key}-{i}") for i in range(3)])
    await ended(gateway, source)

    result = await invoke(gateway, "rerun", source, "--from", "1", "--follow")

    assert result.exit_code == 0, result.output
    assert f"started {source}.rerun-1: reusing 1 step(s)" in result.output
    assert "running 1, 2" in result.output
    assert "complete" in result.output
    assert [targets.state.calls[f"{key}-{i}"] for i in range(3)] == [1, 2, 2]
    by_name = await invoke(gateway, "rerun", source, "--from", "second")
    assert by_name.exit_code == 2 and "by index" in by_name.output


def review(targets: Targets, key: str, **approval: Any) -> list[Any]:
    return [
        record(targets, f"{key}-fetch"),
        {"type": "approval", "message": "Publish {{result}}?", **approval},
        {
            "type": "endpoint",
            "apiUrl": f"{targets.url}/echo/{key}",
            "method": "POST",
            "body": {"decided": "{{result}}"},
        },
    ]


async def waiting(gateway: Gateway, workflow_id: str, index: int) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        status = (await gateway.http.get(f"/runs/{workflow_id}")).json()
        return status if status["steps"][index]["status"] == "waiting" else None

    found: dict[str, Any] = await wait_until(reached)
    return found


async def test_an_approval_instruction_is_approved_through_the_route(
    gateway: Gateway, targets: Targets
):
    key = unique("iapprove")
    schema = {"type": "object", "required": ["channel"]}
    workflow_id = await start(gateway, review(targets, key, schema=schema))
    await waiting(gateway, workflow_id, 1)
    route = f"/runs/{workflow_id}/steps/1/approve"

    broken = await gateway.http.post(route, json={"data": {"when": "now"}})
    assert broken.status_code == 422 and "channel" in broken.text
    not_waiting = await gateway.http.post(f"/runs/{workflow_id}/steps/0/approve", json={})
    assert not_waiting.status_code == 409
    approved = await gateway.http.post(route, json={"data": {"channel": "news"}, "comment": "ok"})
    assert approved.status_code == 200, approved.text
    decided = approved.json()
    assert (decided["decision"], decided["data"], decided["by"]) == (
        "approve",
        {"channel": "news"},
        "default",
    )
    final = await ended(gateway, workflow_id)
    assert final["status"] == "complete"
    assert json.loads(targets.state.requests[key][-1]["json"]["decided"]) == decided
    assert (await gateway.http.post(route, json={})).status_code == 409


async def test_a_rejected_approval_instruction_ends_the_run_failed(
    gateway: Gateway, targets: Targets
):
    key = unique("ireject")
    workflow_id = await start(gateway, review(targets, key))
    await waiting(gateway, workflow_id, 1)
    rejected = await invoke(gateway, "approve", workflow_id, "1", "--reject", "--comment", "no")
    assert rejected.exit_code == 0, rejected.output
    async with AsyncWorkflowStationClient(gateway.url) as client:
        final = await ended(gateway, workflow_id)
        with pytest.raises(Conflict):
            await client.approve(workflow_id, "1")
    assert final["status"] == "errored"
    assert final["error"]["type"] == "Rejected" and final["error"]["step"] == 1
    assert final["steps"][2]["status"] == "skipped"
    assert targets.state.calls[key] == 0


async def test_a_paused_instruction_run_starts_no_step_until_resumed_and_cancels_paused(
    gateway: Gateway, targets: Targets
):
    key = unique("ipause")
    slow = {"type": "endpoint", "apiUrl": f"{targets.url}/work/{key}-slow?ms=1500"}
    instructions = [slow, record(targets, f"{key}-1"), record(targets, f"{key}-2")]
    workflow_id = await start(gateway, instructions)

    async def running(index: int) -> bool:
        status = (await gateway.http.get(f"/runs/{workflow_id}")).json()
        return bool(status["steps"][index]["status"] == "running")

    await wait_until(lambda: running(0))
    async with AsyncWorkflowStationClient(gateway.url) as client:
        paused = await client.pause(workflow_id)
        assert paused.status == "paused"

        async def finished_first() -> dict[str, Any] | None:
            status = (await gateway.http.get(f"/runs/{workflow_id}")).json()
            return status if status["steps"][0]["status"] == "completed" else None

        status = await wait_until(finished_first)
        assert status["status"] == "paused" and status["steps"][1]["status"] == "pending"
        assert targets.state.calls[f"{key}-1"] == 0
        resumed = await invoke(gateway, "resume", workflow_id)
        # Its answer is the status just after: running, or complete already (fast steps).
        assert resumed.exit_code == 0 and "paused" not in resumed.output
        final = await ended(gateway, workflow_id)
        assert final["status"] == "complete" and final["executionOrder"] == [0, 1, 2]

        second = await start(gateway, instructions)
        await wait_until(lambda: running_in(gateway, second))
        await client.pause(second)
        await client.cancel(second)
        assert (await ended(gateway, second))["status"] == "terminated"
        with pytest.raises(Conflict):
            await client.resume(second)


async def running_in(gateway: Gateway, workflow_id: str) -> bool:
    status = (await gateway.http.get(f"/runs/{workflow_id}")).json()
    return bool(status["steps"][0]["status"] == "running")


async def test_a_pause_lands_while_an_instruction_runs_a_20s_local_call(
    gateway: Gateway, targets: Targets
):
    # An instruction run in `fast` mode holds its workflow task open while the call runs; the
    # pause comes in with the task's next heartbeat (`workflows.shared.control`), not after it.
    slow = unique("slow")
    response = await gateway.http.post(
        "/",
        json={
            "context": "c",
            "executionMode": "fast",
            "instructions": [
                {"type": "endpoint", "apiUrl": f"{targets.url}/slow/{slow}?ms=20000"},
                record(targets, unique("after")),
            ],
        },
    )
    workflow_id = response.json()["instanceId"]

    async def called() -> bool:
        return targets.state.calls[slow] >= 1

    await wait_until(called)
    asked = time.monotonic()
    paused = await gateway.http.post(f"/runs/{workflow_id}/pause")
    took = time.monotonic() - asked
    # The update answers the run's status itself: no query after it, which would wait for
    # the task's next heartbeat.
    handle = gateway.engine.client.get_workflow_handle(workflow_id)
    resumed = await handle.execute_update(InstructionWorkflow.resume)
    assert (await gateway.http.post(f"/runs/{workflow_id}/cancel")).status_code == 200

    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    assert paused.json()["steps"][0]["status"] == "running"
    assert resumed.status == "running"
    assert took < 5  # the 20 s call had not ended; as the DAG's test, about 0.8 s
