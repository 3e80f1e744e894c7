"""Heartbeats while a call is in flight (`activities.context.heartbeating`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities import context
from activities.context import heartbeating
from tests.conftest import activity_env


@pytest.fixture(autouse=True)
def quick_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "HEARTBEAT_INTERVAL", timedelta(milliseconds=20))


def recording(env: ActivityEnvironment) -> list[Any]:
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    return beats


async def answer_when(done: asyncio.Event) -> str:
    await done.wait()
    return "answer"


async def test_a_long_call_heartbeats_until_it_ends():
    env = activity_env()
    beats = recording(env)
    done = asyncio.Event()

    async def call() -> str:
        return await heartbeating(answer_when(done))

    running = asyncio.create_task(env.run(call))
    while len(beats) < 3:
        await asyncio.sleep(0.01)
    done.set()
    assert await running == "answer"
    after_end = len(beats)
    await asyncio.sleep(0.1)
    assert len(beats) == after_end  # no heartbeat once the call has ended


async def test_a_quick_call_sends_no_heartbeat():
    env = activity_env()
    beats = recording(env)

    async def call() -> int:
        return await heartbeating(asyncio.sleep(0, result=7))

    assert await env.run(call) == 7
    await asyncio.sleep(0.1)
    assert beats == []


async def test_a_local_activity_sends_none():
    env = activity_env(is_local=True)
    beats = recording(env)
    done = asyncio.Event()

    async def call() -> str:
        return await heartbeating(answer_when(done))

    running = asyncio.create_task(env.run(call))
    await asyncio.sleep(0.1)
    done.set()
    assert await running == "answer"
    assert beats == []


async def test_a_cancelled_activity_cancels_its_call_and_its_heartbeats():
    env = activity_env()
    beats = recording(env)
    cancelled = asyncio.Event()

    async def never() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def call() -> None:
        await heartbeating(never())

    running = asyncio.create_task(env.run(call))
    while not beats:
        await asyncio.sleep(0.01)
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert cancelled.is_set()
    after_end = len(beats)
    await asyncio.sleep(0.1)
    assert len(beats) == after_end
