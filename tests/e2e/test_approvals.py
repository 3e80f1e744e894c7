"""Approval steps, pause and resume, through the real gateway, dev server, workers and targets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.client import AsyncWorkflowStationClient, Conflict
from tests.conftest import Gateway, Targets, unique, wait_until
from tests.e2e.test_cli import invoke
from workflows.dag.workflow import DagWorkflow
from workflows.shared.events import EventsQuery


def pipeline(steps: list[dict[str, Any]], **settings: Any) -> dict[str, Any]:
    return {
        "workflow_id": unique("approval"),
        "input_data": {"title": "Spring sale"},
        "STEPS_CONFIG": steps,
        "PIPELINE_SETTINGS": settings,
    }


def review_then_publish(targets: Targets, key: str, **approval: Any) -> list[dict[str, Any]]:
    """draft -> review (approval) -> publish, which sends the reviewer's data on."""
    return [
        {"step_name": "draft", "usid": "u1", "service_url": f"{targets.url}/echo/{key}"},
        {
            "step_name": "review",
            "usid": "u2",
            "type": "approval",
            "dependencies": ["draft"],
            "approval": {"message": "Publish {{input_data.title}}?", **approval},
        },
        {
            "step_name": "publish",
            "usid": "u3",
            "service_url": f"{targets.url}/echo/{key}",
            "dependencies": ["review"],
            "input_prep_config": {"body": {"channel": "{{review_result.data.channel}}"}},
        },
    ]


async def status_of(gateway: Gateway, workflow_id: str) -> dict[str, Any]:
    return (await gateway.http.get(f"/runs/{workflow_id}")).json()


async def step_in(gateway: Gateway, workflow_id: str, step: str, state: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        status = await status_of(gateway, workflow_id)
        return status if status["steps"][step]["status"] == state else None

    found: dict[str, Any] = await wait_until(reached)
    return found


async def run_in(gateway: Gateway, workflow_id: str, state: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        status = await status_of(gateway, workflow_id)
        return status if status["status"] == state else None

    found: dict[str, Any] = await wait_until(reached)
    return found


async def events_of(gateway: Gateway, workflow_id: str) -> list[dict[str, Any]]:
    handle = gateway.engine.client.get_workflow_handle(workflow_id)
    page = await handle.query(DagWorkflow.get_events, EventsQuery())
    return page.events


async def test_an_approval_waits_is_approved_once_and_its_data_reaches_the_next_step(
    gateway: Gateway, targets: Targets
) -> None:
    key = unique("approve")
    schema = {
        "type": "object",
        "properties": {"channel": {"type": "string"}},
        "required": ["channel"],
    }
    # A run_timeout shorter than the wait: the deadline must not count the time waited.
    hook = unique("hook")
    body = pipeline(
        review_then_publish(targets, key, timeout=600, schema=schema),
        timeouts={"run_timeout": 3},
        notifications={"webhook_url": f"{targets.url}/hooks/{hook}"},
    )
    workflow_id = body["workflow_id"]
    assert (await gateway.http.post("/execute?wait=false", json=body)).status_code == 202
    waiting = await step_in(gateway, workflow_id, "review", "waiting")
    assert waiting["steps"]["publish"]["status"] == "pending"
    assert waiting["progress"]["waiting"] == 1
    [event] = [e for e in await events_of(gateway, workflow_id) if e["event"] == "step.waiting"]
    assert event["step_name"] == "review"
    assert event["data"]["message"] == "Publish Spring sale?"
    assert event["data"]["schema"] == schema

    async def hooked() -> dict[str, Any] | None:
        sent = [e for e in targets.state.hooks[hook] if e["event"] == "step.waiting"]
        return sent[0] if sent else None

    assert (await wait_until(hooked))["data"] == event["data"]

    await asyncio.sleep(4)  # past the run's 3 s run_timeout, all of it spent waiting
    url = f"/runs/{workflow_id}/steps/review/approve"
    refused = await gateway.http.post(url, json={"data": {"channel": 7}})
    assert refused.status_code == 422, refused.text
    assert "data/channel" in refused.json()["detail"]
    assert (await gateway.http.post(url, json={"data": {}})).status_code == 422

    approved = await gateway.http.post(
        url, json={"decision": "approve", "comment": "ok", "data": {"channel": "email"}}
    )
    assert approved.status_code == 200, approved.text
    decision = approved.json()
    assert decision["decision"] == "approve"
    assert decision["data"] == {"channel": "email"}
    assert decision["by"] == "default"
    assert decision["at"]
    again = await gateway.http.post(url, json={"data": {"channel": "sms"}})
    assert again.status_code == 409, again.text

    final = await run_in(gateway, workflow_id, "completed")
    assert final["steps"]["review"]["result"]["data"] == {"channel": "email"}
    assert final["steps"]["publish"]["result"]["json"] == {"channel": "email"}
    assert targets.state.calls[key] == 2
    late = await gateway.http.post(url, json={"data": {"channel": "sms"}})
    assert late.status_code == 409


async def test_a_rejection_fails_the_step_and_aborts_its_dependents(
    gateway: Gateway, targets: Targets
) -> None:
    key = unique("reject")
    body = pipeline(review_then_publish(targets, key))
    workflow_id = body["workflow_id"]
    await gateway.http.post("/execute?wait=false", json=body)
    await step_in(gateway, workflow_id, "review", "waiting")
    # `draft` is done and not waiting: no approval lands on it.
    not_waiting = await gateway.http.post(f"/runs/{workflow_id}/steps/draft/approve", json={})
    assert not_waiting.status_code == 409
    rejected = await gateway.http.post(
        f"/runs/{workflow_id}/steps/review/approve",
        json={"decision": "reject", "comment": "wrong price"},
    )
    assert rejected.status_code == 200, rejected.text

    final = await run_in(gateway, workflow_id, "failed")
    assert final["steps"]["review"]["status"] == "failed"
    assert final["steps"]["review"]["error"]["type"] == "Rejected"
    assert "wrong price" in final["steps"]["review"]["error"]["message"]
    assert final["steps"]["publish"]["status"] in ("aborted", "cancelled")
    assert final["error"]["step_name"] == "review"
    assert targets.state.calls[key] == 1


def chain(targets: Targets, key: str, ms: int) -> list[dict[str, Any]]:
    return [
        {
            "step_name": name,
            "usid": f"u-{name}",
            "service_url": f"{targets.url}/slow/{key}?ms={ms}",
            "dependencies": [previous] if previous else [],
        }
        for previous, name in [(None, "a"), ("a", "b"), ("b", "c")]
    ]


async def test_a_paused_run_starts_no_step_until_it_is_resumed(
    gateway: Gateway, targets: Targets
) -> None:
    key, hook = unique("pause"), unique("hook")
    # Durable: in `fast` mode a chain of local steps holds its workflow task open, and the
    # pause would wait for it (issue 20, item 5).
    body = pipeline(
        chain(targets, key, 1500),
        execution={"mode": "durable"},
        notifications={"webhook_url": f"{targets.url}/hooks/{hook}"},
    )
    workflow_id = body["workflow_id"]
    await gateway.http.post("/execute?wait=false", json=body)
    await step_in(gateway, workflow_id, "a", "running")
    paused = await gateway.http.post(f"/runs/{workflow_id}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"

    # `a` runs its course; `b`, ready once it is done, does not start.
    status = await step_in(gateway, workflow_id, "a", "completed")
    assert status["status"] == "paused"
    assert status["steps"]["b"]["status"] == "pending"
    assert targets.state.calls[key] == 1

    resumed = await gateway.http.post(f"/runs/{workflow_id}/resume")
    assert resumed.status_code == 200, resumed.text
    final = await run_in(gateway, workflow_id, "completed")
    assert [final["steps"][name]["status"] for name in "abc"] == ["completed"] * 3
    names = [e["event"] for e in await events_of(gateway, workflow_id)]
    assert names.index("workflow.paused") < names.index("workflow.resumed")
    assert names.index("workflow.resumed") < names.index("workflow.completed")

    async def hooked() -> list[str] | None:
        sent = [event["event"] for event in targets.state.hooks[hook]]
        return sent if "workflow.completed" in sent else None

    assert await wait_until(hooked) == names
    assert (await gateway.http.post(f"/runs/{workflow_id}/pause")).status_code == 409
    assert (await gateway.http.post("/runs/no-such-run/pause")).status_code == 404
    missing = await gateway.http.post("/runs/no-such-run/steps/review/approve", json={})
    assert missing.status_code == 404


async def test_cancel_and_approvals_land_while_paused(gateway: Gateway, targets: Targets) -> None:
    key = unique("paused-approval")
    body = pipeline(review_then_publish(targets, key))
    workflow_id = body["workflow_id"]
    await gateway.http.post("/execute?wait=false", json=body)
    await step_in(gateway, workflow_id, "review", "waiting")
    await gateway.http.post(f"/runs/{workflow_id}/pause")
    approved = await gateway.http.post(
        f"/runs/{workflow_id}/steps/review/approve", json={"data": {"channel": "web"}}
    )
    assert approved.status_code == 200, approved.text
    status = await step_in(gateway, workflow_id, "review", "completed")
    assert status["status"] == "paused"
    assert status["steps"]["publish"]["status"] == "pending"

    assert (await gateway.http.post(f"/runs/{workflow_id}/cancel")).status_code == 200
    final = await run_in(gateway, workflow_id, "cancelled")
    assert final["steps"]["publish"]["status"] == "cancelled"
    assert targets.state.calls[key] == 1


async def test_the_cli_and_the_client_pause_approve_and_resume(
    gateway: Gateway, targets: Targets
) -> None:
    key = unique("cli-approval")
    schema = {"type": "object", "properties": {"channel": {"type": "string"}}}
    body = pipeline(review_then_publish(targets, key, schema=schema))
    workflow_id = body["workflow_id"]
    async with AsyncWorkflowStationClient(gateway.url) as client:
        await client.start(body)
        await step_in(gateway, workflow_id, "review", "waiting")

        paused = await invoke(gateway, "pause", workflow_id)
        assert paused.exit_code == 0, paused.output
        assert "paused" in paused.output
        broken = await invoke(gateway, "approve", workflow_id, "review", "--data", '{"channel": 1}')
        assert broken.exit_code == 2
        assert "data/channel" in broken.output
        approved = await invoke(
            gateway, "approve", workflow_id, "review", "--data", '{"channel": "cli"}',
            "--comment", "fine",
        )  # fmt: skip
        assert approved.exit_code == 0, approved.output
        assert "approve by default" in approved.output
        with pytest.raises(Conflict):
            await client.approve(workflow_id, "review", data={"channel": "again"})

        status = await step_in(gateway, workflow_id, "review", "completed")
        assert status["status"] == "paused"
        assert status["steps"]["publish"]["status"] == "pending"
        resumed = await client.resume(workflow_id)
        assert resumed.status == "running"
        final = await run_in(gateway, workflow_id, "completed")
        assert final["steps"]["publish"]["result"]["json"] == {"channel": "cli"}
        with pytest.raises(Conflict):
            await client.pause(workflow_id)


async def test_the_cli_rejects(gateway: Gateway, targets: Targets) -> None:
    key = unique("cli-reject")
    body = pipeline(review_then_publish(targets, key))
    workflow_id = body["workflow_id"]
    async with AsyncWorkflowStationClient(gateway.url) as client:
        await client.start(body)
        await step_in(gateway, workflow_id, "review", "waiting")
        not_json = await invoke(gateway, "approve", workflow_id, "review", "--data", "{")
        assert not_json.exit_code == 2
        rejected = await invoke(gateway, "approve", workflow_id, "review", "--reject")
        assert rejected.exit_code == 0, rejected.output
        final = await run_in(gateway, workflow_id, "failed")
        assert final["steps"]["review"]["error"]["type"] == "Rejected"
        assert (await client.get(workflow_id)).status == "failed"
