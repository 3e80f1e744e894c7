"""Fault test: the webhook receiver is down (nothing listens) for 60 s. The run finishes at
once; once the receiver is back, every event arrives, in order, once, none lost."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import FastAPI, Request

from tests.conftest import Gateway, Targets, unique, wait_until
from tests.fakes.targets import free_port, serve

OUTAGE_SECONDS = 60


async def test_a_receiver_down_for_a_minute_gets_every_event_after_it_recovers(
    gateway: Gateway, targets: Targets
) -> None:
    port = free_port()
    received: list[dict[str, Any]] = []
    receiver = FastAPI()

    @receiver.post("/hooks")
    async def hook(request: Request) -> dict[str, bool]:
        received.append(await request.json())
        return {"ok": True}

    body = {
        "workflow_id": unique("outage"),
        "STEPS_CONFIG": [
            {"step_name": "a", "usid": "u1", "service_url": f"{targets.url}/echo/{unique('a')}"},
            {
                "step_name": "b",
                "usid": "u2",
                "service_url": f"{targets.url}/echo/{unique('b')}",
                "dependencies": ["a"],
            },
        ],
        "PIPELINE_SETTINGS": {"notifications": {"webhook_url": f"http://127.0.0.1:{port}/hooks"}},
    }
    started = time.monotonic()
    response = await gateway.http.post("/execute", json=body)
    assert response.json()["status"] == "completed"
    assert time.monotonic() - started < 10  # the run never waits on its webhooks

    # The outage itself is the thing under test: nothing listens on the port meanwhile.
    await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - started)))
    status = (await gateway.http.get(f"/runs/{body['workflow_id']}")).json()["webhooks"]
    assert status["delivered"] == 0 and status["pending"] == 6
    ids = [event["event_id"] for event in status["events"]]

    async with serve(receiver, port=port):

        async def all_delivered() -> dict[str, Any] | None:
            webhooks = (await gateway.http.get(f"/runs/{body['workflow_id']}")).json()["webhooks"]
            return webhooks if webhooks["delivered"] == 6 else None

        # The outbox's backoff (1 s doubling, at most 300 s apart) tries again within ~64 s.
        await wait_until(all_delivered, timeout=120)

    assert [event["event_id"] for event in received] == ids
    assert [event["sequence"] for event in received] == [1, 2, 3, 4, 5, 6]
    assert [event["event"] for event in received] == [
        "workflow.started",
        "step.started",
        "step.completed",
        "step.started",
        "step.completed",
        "workflow.completed",
    ]
