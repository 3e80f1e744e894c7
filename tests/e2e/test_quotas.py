"""Running-run limits through the real gateway: atomic across concurrent starts, counted for
every route that starts work, and freed when runs end however they end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from gateway.app import create_app
from tests.conftest import Engine, Targets, _run_workers, make_settings, unique, wait_until
from tests.fakes.targets import serve

KEY = "quota-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
LIMIT = 10


@pytest.fixture
async def stack(dev_env: WorkflowEnvironment, redis_url: str) -> AsyncIterator[Engine]:
    endpoint = unique("ep")
    settings = make_settings(
        dev_env.client,
        redis_url,
        gateway_api_keys=[f"{unique('quota')}:{KEY}"],
        tenant_max_running_runs=LIMIT,
        endpoint_workers=[endpoint],
        endpoint_run_max_seconds=3,
    )
    async for engine in _run_workers(dev_env.client, settings, [endpoint]):
        yield engine


@pytest.fixture
async def http(stack: Engine) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve(create_app(stack.settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=60, headers=AUTH) as client,
    ):
        yield client


def slow_pipeline(targets: Targets, ms: int = 60_000) -> dict[str, Any]:
    return {
        "workflow_id": unique("held"),
        "STEPS_CONFIG": [
            {
                "step_name": "a",
                "usid": "u1",
                "service_url": f"{targets.url}/slow/{unique('k')}?ms={ms}",
            }
        ],
    }


async def terminate_all(stack: Engine, tenant: str, workflow_ids: list[str]) -> None:
    for workflow_id in workflow_ids:
        await stack.client.get_workflow_handle(f"{tenant}/{workflow_id}").terminate("test over")


async def test_30_concurrent_starts_against_a_limit_of_10_leave_exactly_10_running(
    stack: Engine, http: httpx.AsyncClient, targets: Targets
) -> None:
    bodies = [slow_pipeline(targets) for _ in range(30)]
    answers = await asyncio.gather(
        *(http.post("/execute?wait=false", json=body) for body in bodies)
    )
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [202] * LIMIT + [429] * 20
    tenant = stack.settings.gateway_api_keys[0].partition(":")[0]
    states = []
    for body in bodies:
        try:
            handle = stack.client.get_workflow_handle(f"{tenant}/{body['workflow_id']}")
            states.append((await handle.describe()).status)
        except Exception:  # noqa: BLE001 - never started
            states.append(None)
    assert states.count(WorkflowExecutionStatus.RUNNING) == LIMIT
    assert states.count(None) == 20
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert "TENANT_MAX_RUNNING_RUNS" in refused.json()["detail"]

    # The endpoint proxy counts too.
    call = {"url": f"{targets.url}/echo/{unique('e')}"}
    endpoint = stack.settings.endpoint_workers[0]
    assert (await http.post(f"/endpoints/{endpoint}", json=call)).status_code == 429

    # Runs ended from outside the gateway (terminated, as by a crash or the Web UI) give
    # their slots back: the next start reconciles against Temporal.
    started = [body["workflow_id"] for body, a in zip(bodies, answers, strict=True) if a.is_success]
    await terminate_all(stack, tenant, started)

    async def accepted() -> httpx.Response | None:
        response = await http.post("/execute?wait=false", json=slow_pipeline(targets, ms=0))
        return response if response.status_code == 202 else None

    await wait_until(accepted, timeout=20, interval=0.3)


async def test_a_synchronous_run_gives_its_slot_back_when_it_ends(
    stack: Engine, http: httpx.AsyncClient, targets: Targets
) -> None:
    for _ in range(LIMIT + 5):
        done = await http.post("/execute", json=slow_pipeline(targets, ms=0))
        assert done.status_code == 200, done.text


async def test_an_endpoint_call_ends_within_its_bound(
    stack: Engine, http: httpx.AsyncClient, targets: Targets
) -> None:
    # Twenty retries of a target that takes a minute to answer: hours of budget, cut to 3 s.
    call = {
        "url": f"{targets.url}/slow/{unique('hang')}?ms=20000",
        "retries": 20,
        "retryDelay": 60_000,
        "timeout": 60_000,
    }
    endpoint = stack.settings.endpoint_workers[0]
    response = await http.post(f"/endpoints/{endpoint}", json=call)
    assert response.status_code == 504, response.text
    assert "ENDPOINT_RUN_MAX_SECONDS" in response.json()["detail"]
    tenant = stack.settings.gateway_api_keys[0].partition(":")[0]

    async def timed_out() -> bool:
        listed = [
            run
            async for run in stack.client.list_workflows(f"TaskQueue = '{endpoint}'")
            if run.id.startswith(f"{tenant}/")
        ]
        return bool(listed) and all(
            run.status == WorkflowExecutionStatus.TIMED_OUT for run in listed
        )

    await wait_until(timed_out, timeout=20, interval=0.2)


async def test_a_rerun_takes_a_slot_like_any_start(
    stack: Engine, http: httpx.AsyncClient, targets: Targets
) -> None:
    source = slow_pipeline(targets, ms=0)
    assert (await http.post("/execute", json=source)).status_code == 200
    held = [slow_pipeline(targets) for _ in range(LIMIT)]
    for body in held:
        assert (await http.post("/execute?wait=false", json=body)).status_code == 202

    refused = await http.post(f"/runs/{source['workflow_id']}/rerun", json={"from_step": "a"})

    assert refused.status_code == 429, refused.text
    tenant = stack.settings.gateway_api_keys[0].partition(":")[0]
    await terminate_all(stack, tenant, [body["workflow_id"] for body in held])

    async def accepted() -> httpx.Response | None:
        response = await http.post(f"/runs/{source['workflow_id']}/rerun", json={"from_step": "a"})
        return response if response.status_code == 202 else None

    await wait_until(accepted, timeout=20, interval=0.3)
