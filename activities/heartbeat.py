"""Heartbeating while an activity awaits its call, shared by the HTTP and LLM activities."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

from temporalio import activity

T = TypeVar("T")

#: How often a running call reports liveness; a crashed worker's call is retried after the
#: activity's heartbeat timeout instead of its whole start-to-close timeout.
HEARTBEAT_INTERVAL = timedelta(seconds=2)


async def heartbeating(work: Awaitable[T]) -> T:
    """Await `work`, heartbeating meanwhile so cancellation and worker loss are seen soon."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_INTERVAL.total_seconds())
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        task.cancel()
