"""The typed client (`gateway.client`), blocking and asyncio, against the real gateway: runs
of both engines, the plan, typed problems, and events that resume across a dropped stream.
The blocking client runs in a thread: the gateway serves from this test's event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.client import (
    AsyncWorkflowStationClient,
    Conflict,
    GatewayUnreachable,
    InvalidPayload,
    NotFound,
    WorkflowStationClient,
)
from tests.conftest import Gateway, Targets, unique, wait_until
from tests.fakes.cutting_proxy import CuttingProxy
from tests.fakes.targets import serve
from workflows.dag.models import DagRunResult, PipelineRequest


def pipeline(targets: Targets, steps: int = 3) -> dict[str, Any]:
    key = unique("client")
    chain = [
        {
            "step_name": f"s{n}",
            "usid": f"u{n}",
            "service_url": f"{targets.url}/echo/{key}",
            "dependencies": [f"s{n - 1}"] if n else [],
            "outputs": [f"out{n}"],
        }
        for n in range(steps)
    ]
    return {"workflow_id": unique("client"), "STEPS_CONFIG": chain}


async def test_the_blocking_client_runs_reads_lists_and_raises_typed_problems(
    gateway: Gateway, targets: Targets
) -> None:
    body = pipeline(targets)
    typo = pipeline(targets)
    typo["STEPS_CONFIG"][0]["timout"] = 1

    def use() -> dict[str, Any]:
        with WorkflowStationClient(gateway.url) as client:
            result = client.run(PipelineRequest.model_validate(body))
            got = client.get(body["workflow_id"])
            plan = client.validate(body)
            with pytest.raises(InvalidPayload) as invalid:
                client.validate(typo)
            with pytest.raises(NotFound) as missing:
                client.get(unique("missing"))
            with pytest.raises(Conflict):
                client.cancel(body["workflow_id"])
            return {
                "result": result,
                "got": got,
                "plan": plan,
                "problems": invalid.value.problems,
                "missing": missing.value,
            }

    seen = await asyncio.to_thread(use)

    result = seen["result"]
    assert isinstance(result, DagRunResult)
    assert result.status == "completed"
    assert sorted(result.outputs) == ["out0", "out1", "out2"]
    assert seen["got"] == result
    assert seen["plan"].levels == [["s0"], ["s1"], ["s2"]]
    assert [item["msg"] for item in seen["problems"]] == [
        "STEPS_CONFIG[0].timout: unknown field; did you mean 'timeout'?"
    ]
    assert seen["missing"].status_code == 404
    assert "no run" in str(seen["missing"].detail)

    def listed() -> list[str]:
        with WorkflowStationClient(gateway.url) as client:
            return [run.workflow_id for run in client.list(status="completed")]

    async def in_list() -> bool:
        return body["workflow_id"] in await asyncio.to_thread(listed)

    await wait_until(in_list)


async def test_the_async_client_runs_both_engines(gateway: Gateway, targets: Targets) -> None:
    key = unique("client-instructions")
    instructions = {
        "context": "temporal",
        "instructions": [{"type": "endpoint", "apiUrl": f"{targets.url}/echo/{key}"}],
    }
    async with AsyncWorkflowStationClient(gateway.url) as client:
        result = await client.run(pipeline(targets, steps=2))
        started = await client.start_instructions(instructions)
        names = [event.event async for event in client.events(started.instance_id)]
        finished = await client.get(started.instance_id)
        plan = await client.validate(instructions)

    assert result.status == "completed"
    assert names[0] == "workflow.started" and names[-1] == "end"
    assert finished.status == "complete"
    assert plan.engine == "instructions" and plan.steps[0].type == "endpoint"


async def test_events_resume_after_the_stream_drops(gateway: Gateway, targets: Targets) -> None:
    body = pipeline(targets)
    await gateway.http.post("/execute", json=body)
    async with AsyncWorkflowStationClient(gateway.url) as client:
        whole = [(event.event, event.id) async for event in client.events(body["workflow_id"])]

    blocking = CuttingProxy(gateway.url, cuts=2)
    asynchronous = CuttingProxy(gateway.url, cuts=2)
    async with serve(blocking.app()) as blocking_url, serve(asynchronous.app()) as async_url:

        def follow() -> list[tuple[str, int | None]]:
            with WorkflowStationClient(blocking_url) as client:
                return [(event.event, event.id) for event in client.events(body["workflow_id"])]

        through_blocking = await asyncio.to_thread(follow)
        async with AsyncWorkflowStationClient(async_url) as client:
            through_async = [
                (event.event, event.id) async for event in client.events(body["workflow_id"])
            ]

    assert through_blocking == through_async == whole
    # Cut after the first event, then after the second: each reconnection asked for the rest.
    assert blocking.resumed_from == asynchronous.resumed_from == [None, "1", "2"]


async def test_a_gateway_that_is_not_there_is_gateway_unreachable() -> None:
    async with AsyncWorkflowStationClient("http://127.0.0.1:9", timeout=2) as client:
        with pytest.raises(GatewayUnreachable):
            await client.get("anything")
