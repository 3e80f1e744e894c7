"""What the HTTP and LLM activities take from their Temporal context: heartbeats while a call
is in flight, and how long a server's Retry-After may make Temporal wait."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from temporalio import activity

T = TypeVar("T")

#: How often a running call reports liveness; a crashed worker's call is retried after the
#: activity's heartbeat timeout instead of its whole start-to-close timeout.
HEARTBEAT_INTERVAL = timedelta(seconds=2)


async def heartbeating(work: Awaitable[T]) -> T:
    """Await `work`, heartbeating meanwhile so cancellation and worker loss are seen soon.

    The heartbeats are timer callbacks on the activity's own task, not a task beside it: most
    calls end before the first one is due, and then cost one timer, never a second task and
    an `asyncio.wait` (this runs once per step, on a chain's critical path). A cancelled
    activity is cancelled in `work` itself. A local activity sends none: it runs in the worker
    running its workflow, whose workflow task carries its liveness, and its cancellation
    comes from that worker directly.
    """
    if activity.info().is_local:
        return await work
    beats = _Heartbeats(HEARTBEAT_INTERVAL.total_seconds())
    try:
        return await work
    finally:
        beats.stop()


class _Heartbeats:
    """`activity.heartbeat()` every `interval` seconds, from a timer.

    Timers are scheduled from the activity's context (`call_later` copies it, and each beat
    schedules the next from its own copy), which is what `activity.heartbeat` reads.
    """

    def __init__(self, interval: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._interval = interval
        self._timer = self._loop.call_later(interval, self._beat)

    def _beat(self) -> None:
        activity.heartbeat()
        self._timer = self._loop.call_later(self._interval, self._beat)

    def stop(self) -> None:
        self._timer.cancel()


def retry_delay_ceiling() -> timedelta | None:
    """The longest wait before the next attempt that still fits this activity's budget.

    A server's `Retry-After` overrides the retry policy's backoff; without a ceiling,
    `Retry-After: 99999999` would park a step for three years. The ceiling is the policy's
    maximum interval and, when the activity has a schedule-to-close timeout, what remains of it.
    """
    info = activity.info()
    ceilings: list[timedelta] = []
    if info.retry_policy is not None and info.retry_policy.maximum_interval:
        ceilings.append(info.retry_policy.maximum_interval)
    if info.schedule_to_close_timeout:
        elapsed = datetime.now(UTC) - info.scheduled_time
        ceilings.append(max(timedelta(0), info.schedule_to_close_timeout - elapsed))
    return min(ceilings) if ceilings else None
