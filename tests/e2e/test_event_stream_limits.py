"""Event streams through the real gateway: a tenant's open streams are limited, and streams
of one run all get every event while sharing the polls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from tests.conftest import Engine, Targets, unique
from tests.fakes.targets import serve

KEY = "streams-key-0123456789abcdef"


@pytest.fixture
async def http(dev_engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    settings = dev_engine.settings.model_copy(
        update={
            "gateway_api_keys": [f"{unique('streams')}:{KEY}"],
            "tenant_max_event_streams": 2,
        }
    )
    async with (
        serve(create_app(settings)) as url,
        httpx.AsyncClient(
            base_url=url, timeout=60, headers={"Authorization": f"Bearer {KEY}"}
        ) as client,
    ):
        yield client


async def start(http: httpx.AsyncClient, targets: Targets, ms: int) -> str:
    workflow_id = unique("watched")
    body = {
        "workflow_id": workflow_id,
        "STEPS_CONFIG": [
            {
                "step_name": "a",
                "usid": "u",
                "service_url": f"{targets.url}/slow/{unique('k')}?ms={ms}",
            },
            {
                "step_name": "b",
                "usid": "v",
                "service_url": f"{targets.url}/echo/{unique('k')}",
                "dependencies": ["a"],
            },
        ],
    }
    assert (await http.post("/execute?wait=false", json=body)).status_code == 202
    return workflow_id


async def events_of(http: httpx.AsyncClient, workflow_id: str) -> list[tuple[str, Any]]:
    received: list[tuple[str, Any]] = []
    event = ""
    async with http.stream("GET", f"/runs/{workflow_id}/events") as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data = json.loads(line.partition(":")[2])
                received.append((event, data.get("sequence")))
                if event == "end":
                    break
    return received


async def test_a_tenant_holds_at_most_its_limit_of_streams(
    http: httpx.AsyncClient, targets: Targets
) -> None:
    workflow_id = await start(http, targets, ms=60_000)
    path = f"/runs/{workflow_id}/events"
    async with http.stream("GET", path) as first, http.stream("GET", path) as second:
        assert (first.status_code, second.status_code) == (200, 200)
        third = await http.get(path)
        assert third.status_code == 429
        assert "TENANT_MAX_EVENT_STREAMS" in third.json()["detail"]
    # Closed streams give their slots back.
    async with http.stream("GET", path) as again:
        assert again.status_code == 200
    await http.post(f"/runs/{workflow_id}/cancel")


async def test_streams_of_one_run_each_get_every_event(
    http: httpx.AsyncClient, targets: Targets
) -> None:
    workflow_id = await start(http, targets, ms=1500)
    first, second = await asyncio.gather(events_of(http, workflow_id), events_of(http, workflow_id))
    assert first == second
    assert first[-1][0] == "end"
    sequences = [sequence for event, sequence in first if event != "end"]
    assert sequences == list(range(1, len(sequences) + 1))
    assert ("workflow.completed", sequences[-1]) in first
