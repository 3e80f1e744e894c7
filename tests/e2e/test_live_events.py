"""`GET /runs/{id}/events`: a run's live progress as Server-Sent Events, through the real
gateway in front of the real dev server and workers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from tests.conftest import Engine, Gateway, Targets, unique, wait_until
from tests.fakes.targets import serve


async def read_stream(
    http: httpx.AsyncClient,
    path: str,
    headers: dict[str, str] | None = None,
    until: str | None = None,
) -> list[dict[str, Any]]:
    """Every SSE message of `path` until the server closes the stream (or one named `until`
    arrives): `{"event", "id", "data"}`, with `data` parsed."""
    messages: list[dict[str, Any]] = []
    message: dict[str, Any] = {}
    async with http.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if not line:
                if "data" in message:
                    message["data"] = json.loads(message["data"])
                    messages.append(message)
                    if message.get("event") == until:
                        break
                message = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(":")
                message[field] = value.removeprefix(" ")
    return messages


def pipeline(targets: Targets, hook: str | None = None) -> dict[str, Any]:
    key = unique("k")
    return {
        "workflow_id": unique("sse"),
        "namespace": "live",
        "STEPS_CONFIG": [
            {"step_name": "a", "usid": "u-a", "service_url": f"{targets.url}/echo/{key}"},
            {"step_name": "b", "usid": "u-b", "service_url": f"{targets.url}/echo/{key}"},
            {
                "step_name": "c",
                "usid": "u-c",
                "service_url": f"{targets.url}/echo/{key}",
                "dependencies": ["a", "b"],
                "outputs": ["out"],
            },
        ],
        "PIPELINE_SETTINGS": {"notifications": {"webhook_url": f"{targets.url}/hooks/{hook}"}}
        if hook
        else {},
    }


def run_events(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("id")]


async def test_the_stream_delivers_every_event_in_order_as_the_webhooks_do(
    gateway: Gateway, targets: Targets
) -> None:
    hook = unique("hook")
    body = pipeline(targets, hook)
    started = await gateway.http.post("/execute?wait=false", json=body)
    assert started.status_code == 202
    messages = await read_stream(gateway.http, f"/runs/{body['workflow_id']}/events")
    events = run_events(messages)
    # Sequence 1..N, each under its own SSE id, and the stream closes with `end`.
    assert [int(m["id"]) for m in events] == list(range(1, len(events) + 1))
    assert [m["data"]["sequence"] for m in events] == list(range(1, len(events) + 1))
    assert all(m["event"] == m["data"]["event"] for m in events)
    names = [(m["event"], m["data"].get("step_name")) for m in events]
    assert names[0] == ("workflow.started", None)
    assert names[-1] == ("workflow.completed", None)
    assert sorted(n for n in names if n[0].startswith("step.")) == sorted(
        (kind, step) for step in "abc" for kind in ("step.started", "step.completed")
    )
    assert names.index(("step.started", "c")) > names.index(("step.completed", "a"))
    assert messages[-1]["event"] == "end"
    assert messages[-1]["data"] == {"status": "completed", "last": len(events)}
    assert events[-1]["data"]["progress"] == {"completed": 3, "failed": 0, "aborted": 0, "total": 3}
    # The webhook receiver gets the very same events.
    received = await wait_until(lambda: _delivered(targets, hook, len(events)), timeout=60)
    assert [e["event_id"] for e in received] == [m["data"]["event_id"] for m in events]
    assert [{k: v for k, v in e.items() if k != "_headers"} for e in received] == [
        m["data"] for m in events
    ]


async def _delivered(targets: Targets, hook: str, count: int) -> list[dict[str, Any]] | None:
    events = targets.state.hooks[hook]
    return list(events) if len(events) == count else None


async def test_a_reconnect_gets_exactly_the_events_after_its_last_id(
    gateway: Gateway, targets: Targets
) -> None:
    body = pipeline(targets)  # no webhook: every run has its stream all the same
    assert (await gateway.http.post("/execute", json=body)).json()["status"] == "completed"
    path = f"/runs/{body['workflow_id']}/events"
    every = run_events(await read_stream(gateway.http, path))
    total = len(every)
    assert total == 8
    for k in (0, 1, 3, total - 1, total):
        resumed = await read_stream(gateway.http, path, {"Last-Event-ID": str(k)})
        assert [int(m["id"]) for m in run_events(resumed)] == list(range(k + 1, total + 1))
        assert [m["data"] for m in run_events(resumed)] == [m["data"] for m in every[k:]]
        assert resumed[-1]["event"] == "end"
        assert resumed[-1]["data"]["last"] == total
        # The same from the query string, for clients that cannot set headers.
        queried = await read_stream(gateway.http, f"{path}?after={k}")
        assert [m["data"] for m in run_events(queried)] == [m["data"] for m in every[k:]]
    # An id past the run's last event (one from another run): nothing more, and the end says
    # where this run's log ends.
    beyond = await read_stream(gateway.http, path, {"Last-Event-ID": str(total + 50)})
    assert [m["event"] for m in beyond] == ["end"]
    assert beyond[0]["data"] == {"status": "completed", "last": total}
    # The header wins over the query string (a browser's reconnect keeps the URL).
    both = await read_stream(gateway.http, f"{path}?after=1", {"Last-Event-ID": "5"})
    assert [int(m["id"]) for m in run_events(both)] == list(range(6, total + 1))
    bad = await gateway.http.get(path, headers={"Last-Event-ID": "abc"})
    assert bad.status_code == 422 and "Last-Event-ID" in bad.text


async def test_the_stream_is_live_and_ends_when_the_run_is_cancelled(
    gateway: Gateway, targets: Targets
) -> None:
    key = unique("hang")
    body = {
        "workflow_id": unique("sse-hang"),
        "STEPS_CONFIG": [
            {"step_name": "stuck", "usid": "u-s", "service_url": f"{targets.url}/hang/{key}"}
        ],
    }
    assert (await gateway.http.post("/execute?wait=false", json=body)).status_code == 202
    path = f"/runs/{body['workflow_id']}/events"
    # The step never answers: these events can only have come while the run was going on.
    live = await read_stream(gateway.http, path, until="step.started")
    assert [m["event"] for m in live] == ["workflow.started", "step.started"]
    cancelled = await gateway.http.post(f"/runs/{body['workflow_id']}/cancel")
    assert cancelled.status_code == 200
    rest = await read_stream(gateway.http, path, {"Last-Event-ID": live[-1]["id"]})
    assert [m["event"] for m in rest] == ["workflow.cancelled", "end"]
    assert rest[-1]["data"]["status"] == "cancelled"


async def test_a_failed_run_ends_its_stream_naming_the_step(
    gateway: Gateway, targets: Targets
) -> None:
    body = {
        "workflow_id": unique("sse-fail"),
        "STEPS_CONFIG": [
            {
                "step_name": "broken",
                "usid": "u-b",
                "service_url": f"{targets.url}/status/{unique('k')}/400",
            }
        ],
    }
    await gateway.http.post("/execute", json=body)
    messages = await read_stream(gateway.http, f"/runs/{body['workflow_id']}/events")
    assert [m["event"] for m in messages] == [
        "workflow.started",
        "step.started",
        "step.failed",
        "workflow.failed",
        "end",
    ]
    assert messages[2]["data"]["step_name"] == "broken"
    assert messages[3]["data"]["data"]["error"]["step_name"] == "broken"
    assert messages[-1]["data"]["status"] == "failed"


async def test_an_unknown_run_is_404(gateway: Gateway) -> None:
    response = await gateway.http.get(f"/runs/{unique('nope')}/events")
    assert response.status_code == 404
    assert "no run" in response.json()["detail"]


ACME = "acme-key-0123456789abcdef"
BETA = "beta-key-0123456789abcdef"


@pytest.fixture
async def keyed_http(dev_engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    settings = dev_engine.settings.model_copy(
        update={"gateway_api_keys": [f"acme:{ACME}", f"beta:{BETA}"]}
    )
    async with (
        serve(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as client,
    ):
        yield client


async def test_another_tenants_run_is_404(keyed_http: httpx.AsyncClient, targets: Targets) -> None:
    body = pipeline(targets)
    acme = {"Authorization": f"Bearer {ACME}"}
    beta = {"Authorization": f"Bearer {BETA}"}
    assert (await keyed_http.post("/execute", json=body, headers=acme)).status_code == 200
    path = f"/runs/{body['workflow_id']}/events"
    assert (await keyed_http.get(path, headers=beta)).status_code == 404
    assert (await keyed_http.get(path)).status_code == 401
    own = await read_stream(keyed_http, path, acme)
    assert own[-1]["data"]["status"] == "completed"
    assert run_events(own)[0]["data"]["workflow_id"] == body["workflow_id"]


async def test_an_instruction_run_streams_its_steps(gateway: Gateway, targets: Targets) -> None:
    key = unique("instr")
    body = {
        "context": "ctx",
        "instructions": [
            {"type": "endpoint", "apiUrl": f"{targets.url}/echo/{key}?n={i}"} for i in range(2)
        ],
    }
    created = await gateway.http.post("/", json=body)
    assert created.status_code == 200, created.text
    instance_id = created.json()["instanceId"]
    messages = await read_stream(gateway.http, f"/runs/{instance_id}/events")
    assert [(m["event"], m["data"].get("step_name")) for m in messages[:-1]] == [
        ("workflow.started", None),
        ("step.started", "0"),
        ("step.completed", "0"),
        ("step.started", "1"),
        ("step.completed", "1"),
        ("workflow.completed", None),
    ]
    assert [int(m["id"]) for m in run_events(messages)] == list(range(1, 7))
    assert messages[-2]["data"]["workflow_id"] == instance_id
    assert messages[-2]["data"]["progress"] == {
        "completed": 2,
        "failed": 0,
        "skipped": 0,
        "total": 2,
    }
    assert messages[-1] == {"event": "end", "data": {"status": "completed", "last": 6}}
