"""Endpoint workers: the proxy API, CORS, and routing calls to named worker processes.

Everything runs for real: dev server, gateway over HTTP, endpoint workers (one of them in a
separate `worker.py` process), local target services.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from gateway.app import create_app
from settings import Settings
from tests.conftest import (
    LOOPBACK,
    Engine,
    Targets,
    _run_workers,
    make_settings,
    unique,
    wait_until,
)
from tests.fakes.targets import serve

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class EndpointStack:
    url: str
    http: httpx.AsyncClient
    engine: Engine
    names: list[str]


@pytest.fixture
async def stack(dev_env: WorkflowEnvironment, redis_url: str) -> AsyncIterator[EndpointStack]:
    """Gateway + main worker + in-process workers for the first two endpoint names.

    The third name has no worker here: tests that need it start a separate process.
    """
    names = [unique("ep1"), unique("ep2"), unique("ep3")]
    # As an operator may set it: browser pages may call the endpoint proxy.
    settings = make_settings(
        dev_env.client, redis_url, endpoint_workers=names, cors_allow_origins=["*"]
    )
    async for engine in _run_workers(dev_env.client, settings, names[:2]):
        app = create_app(settings)
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
            yield EndpointStack(url, http, engine, names)


# -- the proxy API ---------------------------------------------------------------------


async def test_proxy_call_answers_in_the_seed_format(stack: EndpointStack, targets: Targets):
    key = unique("proxy")
    response = await stack.http.post(
        f"/endpoints/{stack.names[0]}",
        json={
            "url": f"{targets.url}/echo/{key}",
            "method": "POST",
            "headers": {"X-Seed": "1"},
            "body": {"q": 1},
        },
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["success"] is True
    assert (answer["status"], answer["statusText"], answer["attempts"]) == (200, "OK", 1)
    assert answer["body"]["json"] == {"q": 1}
    assert answer["body"]["headers"]["x-seed"] == "1"
    assert answer["headers"]["content-type"] == "application/json"
    assert answer["duration"] >= 0
    assert answer["endpoint"] == stack.names[0]


async def test_proxy_retries_with_backoff_and_counts_attempts(
    stack: EndpointStack, targets: Targets
):
    key = unique("flaky")
    answer = (
        await stack.http.post(
            f"/endpoints/{stack.names[1]}",
            json={
                "url": f"{targets.url}/flaky/{key}?failures=2&code=502",
                "method": "POST",
                "retries": 3,
                "retryDelay": 10,
            },
        )
    ).json()
    assert answer["success"] is True
    assert answer["attempts"] == 3
    assert targets.state.calls[key] == 3


async def test_proxy_passes_4xx_through_without_retry(stack: EndpointStack, targets: Targets):
    key = unique("404")
    answer = (
        await stack.http.post(
            f"/endpoints/{stack.names[0]}",
            json={"url": f"{targets.url}/status/{key}/404", "retries": 3, "retryDelay": 10},
        )
    ).json()
    assert answer["success"] is False
    assert (answer["status"], answer["attempts"]) == (404, 1)
    assert answer["body"] == {"error": "status 404"}
    assert targets.state.calls[key] == 1


async def test_proxy_gives_up_after_retries_and_on_timeout(stack: EndpointStack, targets: Targets):
    down, slow = unique("down"), unique("slow")
    answer = (
        await stack.http.post(
            f"/endpoints/{stack.names[0]}",
            json={"url": f"{targets.url}/status/{down}/500", "retries": 1, "retryDelay": 10},
        )
    ).json()
    assert answer["success"] is False
    assert (answer["status"], answer["attempts"]) == (500, 2)
    assert "HttpServerError" in answer["error"]
    assert targets.state.calls[down] == 2

    answer = (
        await stack.http.post(
            f"/endpoints/{stack.names[0]}",
            json={"url": f"{targets.url}/slow/{slow}?ms=3000", "retries": 0, "timeout": 300},
        )
    ).json()
    assert answer["success"] is False
    assert "timed out" in answer["error"]


async def test_proxy_rejects_unknown_names_and_invalid_requests(stack: EndpointStack):
    response = await stack.http.post("/endpoints/nope", json={"url": "http://127.0.0.1/x"})
    assert response.status_code == 404
    assert stack.names[0] in response.json()["detail"]
    response = await stack.http.post(
        f"/endpoints/{stack.names[0]}", json={"url": "ftp://x", "method": "GET"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "url"]


async def test_proxy_calls_are_visible_in_temporal(stack: EndpointStack, targets: Targets):
    answer = (
        await stack.http.post(
            f"/endpoints/{stack.names[1]}", json={"url": f"{targets.url}/echo/{unique('vis')}"}
        )
    ).json()
    assert answer["success"]
    query = f"WorkflowStationEngine='endpoint' AND WorkflowStationNamespace='{stack.names[1]}'"

    async def listed() -> list[Any]:
        return [wf async for wf in stack.engine.client.list_workflows(query)]

    runs = await wait_until(listed)
    assert runs[0].workflow_type == "EndpointCallWorkflow"
    assert runs[0].task_queue == stack.names[1]


# -- CORS ------------------------------------------------------------------------------


async def test_cors_preflight_and_headers_on_endpoint_routes_only(stack: EndpointStack):
    preflight = await stack.http.options(
        f"/endpoints/{stack.names[0]}",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-custom",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "x-custom" in preflight.headers["access-control-allow-headers"].lower()

    response = await stack.http.post(
        "/endpoints/nope", json={}, headers={"Origin": "https://app.example.com"}
    )
    assert response.headers["access-control-allow-origin"] == "*"

    other = await stack.http.options(
        "/execute",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in other.headers


async def test_no_cors_by_default(dev_env: WorkflowEnvironment, redis_url: str) -> None:
    settings = make_settings(dev_env.client, redis_url)
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        preflight = await http.options(
            "/endpoints/endpoint-1",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
    assert "access-control-allow-origin" not in preflight.headers


async def test_cors_origins_come_from_settings(dev_env: WorkflowEnvironment, redis_url: str):
    settings = make_settings(
        dev_env.client, redis_url, cors_allow_origins=["https://ok.example.com"]
    )
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        headers = {"Access-Control-Request-Method": "POST"}
        allowed = await http.options(
            "/endpoints/x", headers={**headers, "Origin": "https://ok.example.com"}
        )
        refused = await http.options(
            "/endpoints/x", headers={**headers, "Origin": "https://evil.example.com"}
        )
    assert allowed.headers["access-control-allow-origin"] == "https://ok.example.com"
    assert refused.status_code == 400


# -- routing instructions and DAG steps to named workers ------------------------------


async def activity_task_queues(engine: Engine, workflow_id: str) -> list[tuple[str, str]]:
    """(task queue, worker identity) of every `call_http` activity in a run's history."""
    handle = engine.client.get_workflow_handle(workflow_id)
    scheduled: dict[int, str] = {}
    found = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attrs.task_queue.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            found.append((scheduled[attrs.scheduled_event_id], attrs.identity))
    return found


async def run_instructions(stack: EndpointStack, instructions: list[Any]) -> dict[str, Any]:
    created = await stack.http.post("/", json={"context": "ctx", "instructions": instructions})
    assert created.status_code == 200, created.text
    instance = created.json()["instanceId"]

    async def finished() -> dict[str, Any] | None:
        status = (await stack.http.get("/", params={"instanceId": instance})).json()
        return status if status["status"] in ("complete", "errored") else None

    status = await wait_until(finished)
    status["instanceId"] = instance
    return status


def endpoint_worker_process(settings: Settings, name: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.effective_temporal_address,
        "REDIS_URL": settings.effective_redis_url,
        "ENDPOINT_WORKERS": ",".join(settings.endpoint_workers),
        "OUTBOUND_ALLOW": ",".join(LOOPBACK),
    }
    return subprocess.Popen(
        [sys.executable, "worker.py", "--endpoints-only", "--endpoint", name],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_endpoint_url_routes_each_call_to_its_worker(stack: EndpointStack, targets: Targets):
    first, second, third = stack.names
    process = endpoint_worker_process(stack.engine.settings, third)
    try:
        key = unique("route")
        status = await run_instructions(
            stack,
            [
                {"type": "endpoint", "apiUrl": f"{targets.url}/echo/{key}"},
                {"type": "endpoint", "endpointUrl": second, "apiUrl": f"{targets.url}/echo/{key}"},
                {
                    "type": "endpoint",
                    "endpointUrl": f"https://{third}.workers.dev",
                    "apiUrl": f"{targets.url}/echo/{key}",
                },
            ],
        )
        assert status["status"] == "complete", status
    finally:
        process.terminate()
        process.wait(10)
    calls = await activity_task_queues(stack.engine, status["instanceId"])
    assert [queue for queue, _ in calls] == [stack.engine.settings.task_queue, second, third]
    # The URL-form name was served by the separate worker process, and only by it.
    assert calls[2][1].startswith(f"{process.pid}@")
    assert not calls[1][1].startswith(f"{process.pid}@")
    assert targets.state.calls[key] == 3


async def test_external_proxy_in_the_seed_format(stack: EndpointStack, targets: Targets):
    key = unique("viaproxy")
    # Our own proxy API speaks the seed format, so it serves as the external proxy here.
    proxy = f"{stack.url}/endpoints/{stack.names[0]}"
    status = await run_instructions(
        stack,
        [
            {
                "type": "endpoint",
                "endpointUrl": proxy,
                "apiUrl": f"{targets.url}/echo/{key}",
                "method": "POST",
                "body": {"previous": "{{result}}"},
            },
            {
                "type": "endpoint",
                "endpointUrl": proxy,
                "apiUrl": f"{targets.url}/status/{key}/403",
                "retries": 2,
                "retryDelay": 10,
            },
        ],
    )
    assert status["status"] == "errored"
    first, second = status["steps"][0], status["steps"][1]
    assert first["status"] == "completed"
    assert '"previous": "ctx"' in first["result"]
    assert second["status"] == "failed"
    assert second["error"]["type"] == "EndpointFailed"
    assert "403" in second["error"]["message"]
    assert targets.state.calls[key] == 2


async def test_unknown_endpoint_name_is_a_422(stack: EndpointStack, targets: Targets):
    response = await stack.http.post(
        "/",
        json={
            "context": "c",
            "instructions": [
                {"type": "endpoint", "endpointUrl": "endpoint-42", "apiUrl": f"{targets.url}/x"}
            ],
        },
    )
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "instructions", 0, "endpointUrl"]
    assert "endpoint-42" in detail["msg"]


async def test_dag_step_runs_on_the_named_endpoint_worker(stack: EndpointStack, targets: Targets):
    body = {
        "workflow_id": unique("dagep"),
        "STEPS_CONFIG": [
            {
                "step_name": "a",
                "usid": "u1",
                "service_url": f"{targets.url}/echo/x",
                "endpoint": stack.names[1],
            },
            {
                "step_name": "b",
                "usid": "u2",
                "service_url": f"{targets.url}/echo/x",
                "dependencies": ["a"],
            },
        ],
    }
    result = (await stack.http.post("/execute", json=body)).json()
    assert result["status"] == "completed"
    calls = await activity_task_queues(stack.engine, body["workflow_id"])
    assert [queue for queue, _ in calls] == [stack.names[1], stack.engine.settings.task_queue]

    body["workflow_id"] = unique("dagep")
    body["STEPS_CONFIG"][0]["endpoint"] = "endpoint-42"
    response = await stack.http.post("/execute", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "STEPS_CONFIG", 0, "endpoint"]


async def test_runs_route_does_not_mistake_an_endpoint_call_for_a_run(
    stack: EndpointStack, targets: Targets
):
    await stack.http.post(f"/endpoints/{stack.names[0]}", json={"url": f"{targets.url}/echo/r"})
    query = f"WorkflowStationEngine='endpoint' AND WorkflowStationNamespace='{stack.names[0]}'"

    async def listed() -> list[Any]:
        return [wf async for wf in stack.engine.client.list_workflows(query)]

    call_id = (await wait_until(listed))[0].id
    response = await stack.http.get(f"/runs/{call_id}")
    assert response.status_code == 404
    assert "EndpointCallWorkflow" in response.json()["detail"]


async def test_proxy_answers_504_when_no_worker_polls_the_queue(
    dev_env: WorkflowEnvironment, redis_url: str, targets: Targets
):
    name = unique("idle")
    settings = make_settings(
        dev_env.client, redis_url, endpoint_workers=[name], endpoint_pickup_timeout_seconds=1
    )
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.post(
            f"/endpoints/{name}",
            json={"url": f"{targets.url}/echo/x", "retries": 0, "timeout": 500},
            timeout=30,
        )
    assert response.status_code == 504
    assert f"worker.py --endpoint {name}" in response.json()["detail"]


async def test_dag_post_with_the_id_of_a_running_instruction_run_is_a_409(
    stack: EndpointStack, targets: Targets
):
    created = await stack.http.post(
        "/",
        json={
            "context": "c",
            "instructions": [
                {"type": "endpoint", "apiUrl": f"{targets.url}/slow/{unique('busy')}?ms=1500"}
            ],
        },
    )
    instance = created.json()["instanceId"]
    response = await stack.http.post(
        "/execute",
        json={
            "workflow_id": instance,
            "STEPS_CONFIG": [
                {"step_name": "a", "usid": "u", "service_url": f"{targets.url}/echo/x"}
            ],
        },
    )
    assert response.status_code == 409
    assert "not a DAG pipeline" in response.json()["detail"]


async def test_proxy_limits_are_checked_before_the_run_starts(
    stack: EndpointStack, targets: Targets
):
    response = await stack.http.post(
        "/",
        json={
            "context": "c",
            "instructions": [
                {
                    "type": "endpoint",
                    "endpointUrl": "https://proxy.example.com/call",
                    "apiUrl": f"{targets.url}/x",
                    "timeout": 7_200_000,
                }
            ],
        },
    )
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "instructions", 0, "timeout"]
    assert "3600000 ms" in detail["msg"]
