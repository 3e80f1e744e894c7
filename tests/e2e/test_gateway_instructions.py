"""The seed-compatible instruction API over HTTP: real gateway, real dev server and workers,
the real LLM SDKs against the fake LLM server, local targets for endpoint steps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Gateway, Targets, unique, wait_until
from tests.fakes.llm_server import FakeLLMServer


async def poll(gateway: Gateway, instance_id: str, until: Callable[[dict[str, Any]], bool]) -> Any:
    async def check() -> dict[str, Any] | None:
        response = await gateway.http.get("/", params={"instanceId": instance_id})
        assert response.status_code == 200, response.text
        body = response.json()
        return body if until(body) else None

    # As a client within TENANT_REQUESTS_PER_SECOND (50) polls: a read that answers from
    # Redis in milliseconds would otherwise send one every 20 ms.
    return await wait_until(check, interval=0.1)


def finished(body: dict[str, Any]) -> bool:
    return body["status"] in ("complete", "errored", "terminated")


async def test_post_then_poll_shows_progress_and_the_final_output(
    llm_gateway: Gateway, fake_llm: FakeLLMServer
):
    fake_llm.when("Summarise").reply("A SUMMARY", usage=(5, 2))
    fake_llm.when("Translate").reply("UNE TRADUCTION", delay=1.0, usage=(4, 3))
    response = await llm_gateway.http.post(
        "/",
        json={
            "context": "Some long text",
            "instructions": ["Summarise the text", "Translate the summary"],
        },
    )
    assert response.status_code == 200, response.text
    created = response.json()
    instance_id = created["instanceId"]
    assert instance_id.startswith("instr-")
    assert created["status"]["status"] == "queued"
    assert [step["status"] for step in created["status"]["steps"]] == ["pending", "pending"]

    running = await poll(
        llm_gateway, instance_id, lambda body: body["steps"][1]["status"] == "running"
    )
    assert running["status"] == "running"
    assert running["output"] == "A SUMMARY"
    assert running["executionOrder"] == [0, 1]
    assert running["steps"][0]["result"] == "A SUMMARY"

    final = await poll(llm_gateway, instance_id, finished)
    assert final["instanceId"] == instance_id
    assert final["status"] == "complete"
    assert final["output"] == "UNE TRADUCTION"
    assert final["error"] is None
    assert final["executionOrder"] == [0, 1]
    # gpt-5-nano, the default model: 0.05 USD per million input tokens, 0.40 output.
    usage = final["usage"]
    assert usage["costUsd"] == pytest.approx((9 * 0.05 + 5 * 0.40) / 1e6, abs=1e-12)
    assert usage["byModel"]["gpt-5-nano"]["cost_usd"] == usage["costUsd"]
    assert (usage["inputTokens"], usage["outputTokens"], usage["totalTokens"]) == (9, 5, 14)
    assert usage["unpricedModels"] == []
    assert final["steps"][1]["usage"]["totalTokens"] == 7
    assert final["steps"][0]["type"] == "llm"
    assert final["steps"][0]["startedAt"] is not None

    # The same run through the engine-agnostic route.
    run = (await llm_gateway.http.get(f"/runs/{instance_id}")).json()
    assert run["instanceId"] == instance_id
    assert run["status"] == "complete"
    assert run["output"] == "UNE TRADUCTION"

    async def listed() -> dict[str, Any] | None:
        runs = (await llm_gateway.http.get("/runs", params={"limit": 200})).json()
        return next((r for r in runs if r["workflow_id"] == instance_id and r["usage"]), None)

    summary = await wait_until(listed)
    assert summary["usage"]["cost_usd"] == usage["costUsd"]


async def test_legacy_payload_and_search_attributes(llm_gateway: Gateway, fake_llm: FakeLLMServer):
    fake_llm.when("Extract").reply("FACTS")
    response = await llm_gateway.http.post(
        "/",
        json={
            "context": "ctx",
            "firstInstruction": "Extract facts",
            "secondInstruction": "Write a title",
            "provider": "anthropic",
        },
    )
    instance_id = response.json()["instanceId"]
    final = await poll(llm_gateway, instance_id, finished)
    assert final["status"] == "complete"
    assert "FACTS" in final["output"]
    assert all(request.api == "messages" for request in fake_llm.requests)

    query = f"WorkflowStationEngine='instructions' AND WorkflowStationId='{instance_id}'"

    async def listed() -> list[Any]:
        return [wf async for wf in llm_gateway.engine.client.list_workflows(query)]

    found = await wait_until(listed)
    assert [wf.id for wf in found] == [instance_id]


async def test_failed_run_reports_the_step_error(llm_gateway: Gateway, targets: Targets):
    key = unique("gone")
    response = await llm_gateway.http.post(
        "/",
        json={
            "context": "ctx",
            "instructions": [
                {"type": "endpoint", "apiUrl": f"{targets.url}/status/{key}/404"},
                "Never runs",
            ],
        },
    )
    final = await poll(llm_gateway, response.json()["instanceId"], finished)
    assert final["status"] == "errored"
    assert final["error"]["type"] == "HttpClientError"
    assert final["error"]["step"] == 0
    assert "404" in final["error"]["message"]
    assert final["steps"][0]["status"] == "failed"
    assert final["steps"][0]["error"]["attempts"] == 1
    assert final["steps"][1]["status"] == "skipped"


async def test_batch_of_twenty_runs_concurrently(llm_gateway: Gateway, fake_llm: FakeLLMServer):
    fake_llm.when("Shout").respond(lambda request: request.last_user_message.upper())
    runs = [{"context": f"run number {n}", "instructions": ["Shout"]} for n in range(20)]
    response = await llm_gateway.http.post("/batch", json={"workflows": runs})
    assert response.status_code == 200, response.text
    instances = response.json()["instances"]
    assert len(instances) == 20
    assert len({instance["instanceId"] for instance in instances}) == 20
    assert all(instance["status"]["status"] == "queued" for instance in instances)

    # One poller, run after run: twenty polling at once would pass the tenant's request rate.
    finals = [await poll(llm_gateway, instance["instanceId"], finished) for instance in instances]
    assert all(final["status"] == "complete" for final in finals)
    assert [final["output"] for final in finals] == [
        f"SHOUT\n\nINPUT:\nRUN NUMBER {n}" for n in range(20)
    ]


async def test_batch_accepts_a_bare_list(llm_gateway: Gateway):
    response = await llm_gateway.http.post(
        "/batch",
        json=[
            {"context": "a", "instructions": [{"type": "thread", "collectFromSteps": [1]}, "x"]},
            {"context": "b", "firstInstruction": "one", "secondInstruction": "two"},
        ],
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["instances"]) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"workflows": []}, "workflows: 0 runs; a batch holds 1 to 20"),
        (
            {"workflows": [{"context": "c", "instructions": ["x"]}] * 21},
            "workflows: 21 runs; a batch holds 1 to 20",
        ),
        ({"workflows": "nope"}, "workflows: expected a list of 1 to 20 instruction runs"),
        (
            {"workflows": [{"context": "c", "instructions": ["x"]}, {"context": "c"}]},
            "workflows[1].instructions: Field required",
        ),
        (
            [
                {"context": "c", "instructions": ["x"]},
                {"context": "c", "instructions": [{"type": "endpoint", "apiUrl": "x://"}]},
            ],
            "workflows[1].instructions[0].apiUrl: 'x://' is not an http(s) URL",
        ),
    ],
)
async def test_batch_outside_the_limits_or_with_a_bad_run_is_422(
    llm_gateway: Gateway, body: Any, message: str
):
    response = await llm_gateway.http.post("/batch", json=body)
    assert response.status_code == 422
    assert message in [item["msg"] for item in response.json()["detail"]]


ENDPOINT = {"type": "endpoint", "apiUrl": "http://127.0.0.1:9/x"}


@pytest.mark.parametrize(
    ("instructions", "message"),
    [
        ([], "instructions: at least one instruction is required"),
        (["ok", {"type": "teleport"}], "instructions[1]: unknown instruction type 'teleport'"),
        (["ok", {**ENDPOINT, "method": "FETCH"}], "instructions[1].method: unknown HTTP method"),
        (["ok", {**ENDPOINT, "apiUrl": "ftp://x"}], "instructions[1].apiUrl: 'ftp://x' is not"),
        (
            [{"type": "router", "evaluationPrompt": "pick", "options": []}],
            "instructions[0].options: a router needs at least one option",
        ),
        (
            [
                {
                    "type": "router",
                    "evaluationPrompt": "pick",
                    "options": [{"id": "a", "endpoint": {"apiUrl": "http://127.0.0.1:9/"}}],
                    "defaultOption": "b",
                }
            ],
            "instructions[0].defaultOption: 'b' is not one of the option ids",
        ),
        (
            ["ok", {"instruction": "x", "condition": {"expression": "e", "ifTrue": [7]}}],
            "instructions[1].condition.ifTrue[0]: step 7 is out of range",
        ),
    ],
)
async def test_invalid_payload_is_422_naming_index_and_field(
    llm_gateway: Gateway, instructions: list[Any], message: str
):
    response = await llm_gateway.http.post("/", json={"context": "c", "instructions": instructions})
    assert response.status_code == 422, response.text
    messages = [item["msg"] for item in response.json()["detail"]]
    assert any(text.startswith(message) for text in messages), messages


async def test_unknown_instance_is_404(llm_gateway: Gateway):
    response = await llm_gateway.http.get("/", params={"instanceId": "instr-missing"})
    assert response.status_code == 404
    assert "instr-missing" in response.json()["detail"]
    assert (await llm_gateway.http.get("/")).status_code == 422


async def test_run_no_worker_has_picked_up_yet_is_queued(llm_gateway: Gateway):
    from workflows.instructions.models import InstructionRunInput
    from workflows.instructions.workflow import InstructionWorkflow

    instance_id = unique("instr-idle")
    await llm_gateway.engine.client.start_workflow(
        InstructionWorkflow.run,
        InstructionRunInput.model_validate({"context": "c", "instructions": ["a", "b"]}),
        id=instance_id,
        task_queue=unique("nobody-polls"),
    )
    started = time.monotonic()
    response = await llm_gateway.http.get("/", params={"instanceId": instance_id})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert [step["status"] for step in body["steps"]] == ["pending", "pending"]
    assert time.monotonic() - started < 5
    await llm_gateway.engine.client.get_workflow_handle(instance_id).terminate()


async def test_instance_lookup_of_a_dag_run_is_404(llm_gateway: Gateway, targets: Targets):
    body = {
        "workflow_id": unique("dag"),
        "STEPS_CONFIG": [{"step_name": "a", "usid": "u", "service_url": f"{targets.url}/echo/x"}],
    }
    assert (await llm_gateway.http.post("/execute", json=body)).status_code == 200
    response = await llm_gateway.http.get("/", params={"instanceId": body["workflow_id"]})
    assert response.status_code == 404
    assert "not an instruction run" in response.json()["detail"]
    assert (await llm_gateway.http.get(f"/runs/{body['workflow_id']}")).json()["status"] == (
        "completed"
    )
