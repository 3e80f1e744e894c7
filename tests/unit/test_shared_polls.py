"""`SharedPolls`: streams that ask the same of a run at once share one call."""

from __future__ import annotations

import asyncio

from gateway.events import SharedPolls


async def test_concurrent_streams_asking_the_same_share_one_call() -> None:
    polls = SharedPolls()
    calls: list[str] = []
    gate = asyncio.Event()

    async def fetch(name: str) -> str:
        calls.append(name)
        await gate.wait()
        return f"page of {name}"

    waiting = [
        asyncio.create_task(polls.get(("events", "acme/run", 7), lambda: fetch("acme/run")))
        for _ in range(50)
    ]
    other = asyncio.create_task(polls.get(("events", "beta/run", 7), lambda: fetch("beta/run")))
    await asyncio.sleep(0)
    gate.set()
    assert set(await asyncio.gather(*waiting)) == {"page of acme/run"}
    assert await other == "page of beta/run"
    assert sorted(calls) == ["acme/run", "beta/run"]


async def test_a_stream_that_leaves_does_not_cancel_the_call_others_wait_for() -> None:
    polls = SharedPolls()
    gate = asyncio.Event()

    async def fetch() -> str:
        await gate.wait()
        return "page"

    leaving = asyncio.create_task(polls.get("key", fetch))
    staying = asyncio.create_task(polls.get("key", fetch))
    await asyncio.sleep(0)
    leaving.cancel()
    gate.set()
    assert await staying == "page"
