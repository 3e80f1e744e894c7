"""A run deadline that stops counting while the run waits for a person.

`run_deadline` (`workflows.shared.failures`) is one timer over the whole run. A run with
approval steps would spend its `run_timeout` waiting for someone to answer, so its deadline
counts only the time no approval is waiting: the timer is dropped when the first wait begins
and started again, for what is left, when the last one ends. Only runs of pipelines with
approval steps take this one, so the commands of every run recorded before it are unchanged.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow


class HeldDeadline:
    """`run_timeout` seconds of the run's time, not counting holds (waits for a person).

    Args:
        run_timeout: the run's budget, in seconds.
        started: when the run (the first of its chain) started.
        held_seconds: time held before this run of the chain (it continued as new).
    """

    def __init__(self, run_timeout: float, started: datetime, held_seconds: float = 0.0) -> None:
        self._run_timeout = run_timeout
        self._started = started
        self._held_before = held_seconds
        self._holds = 0
        self._held_since: datetime | None = None

    @property
    def held_seconds(self) -> float:
        """Time spent held so far, over the whole chain."""
        held = self._held_before
        if self._held_since is not None:
            held += (workflow.now() - self._held_since).total_seconds()
        return held

    def hold(self) -> None:
        """A wait begins: the deadline stops counting until every wait has ended."""
        if self._holds == 0:
            self._held_since = workflow.now()
        self._holds += 1

    def release(self) -> None:
        self._holds -= 1
        if self._holds == 0 and self._held_since is not None:
            self._held_before += (workflow.now() - self._held_since).total_seconds()
            self._held_since = None

    def start(self) -> asyncio.Task[None]:
        """The task that ends when the deadline passes; cancel it when the run ends."""
        return asyncio.create_task(self._expire())

    async def _expire(self) -> None:
        while True:
            await workflow.wait_condition(lambda: self._holds == 0)
            spent = (workflow.now() - self._started).total_seconds() - self._held_before
            remaining = max(self._run_timeout - spent, 0.001)
            try:
                await workflow.wait_condition(
                    lambda: self._holds > 0,
                    timeout=timedelta(seconds=remaining),
                    timeout_summary="run deadline",
                )
            except TimeoutError:
                return
