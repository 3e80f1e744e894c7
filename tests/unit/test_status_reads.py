"""`StatusReads`: readers of one run share one read, and never another run's (or tenant's)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.runs.reads import RunAnswer, StatusReads
from gateway.tenancy import Tenant
from workflows.dag.models import DagRunResult


class SlowRead:
    """A read that answers when released, counting how often it was made."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self) -> RunAnswer:
        self.calls += 1
        await self.release.wait()
        return DagRunResult(workflow_id=self.workflow_id, run_id=f"run-{self.calls}")


async def settle() -> None:
    """Let every task created so far run until it blocks (no timing involved)."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_readers_of_one_run_share_one_read() -> None:
    reads, read = StatusReads(), SlowRead("a")
    readers = [asyncio.create_task(reads.shared("default/a", read)) for _ in range(5)]
    await settle()
    read.release.set()
    answers = await asyncio.gather(*readers)
    assert read.calls == 1
    assert {answer.run_id for answer in answers} == {"run-1"}


async def test_a_read_after_the_shared_one_reads_anew() -> None:
    reads, read = StatusReads(), SlowRead("a")
    read.release.set()
    await reads.shared("default/a", read)
    assert (await reads.shared("default/a", read)).run_id == "run-2"


async def test_tenants_never_share_a_read_of_the_same_id() -> None:
    reads = StatusReads()
    acme, beta = Tenant("acme"), Tenant("beta")
    acme_read, beta_read = SlowRead("acme's"), SlowRead("beta's")
    first = asyncio.create_task(reads.shared(acme.workflow_id("shared"), acme_read))
    second = asyncio.create_task(reads.shared(beta.workflow_id("shared"), beta_read))
    await settle()
    acme_read.release.set()
    beta_read.release.set()
    assert (await first).workflow_id == "acme's"
    assert (await second).workflow_id == "beta's"
    assert acme_read.calls == beta_read.calls == 1


async def test_a_failed_read_fails_every_reader_that_shared_it() -> None:
    reads = StatusReads()
    gate = asyncio.Event()

    async def failing() -> RunAnswer:
        await gate.wait()
        raise LookupError("no run")

    readers = [asyncio.create_task(reads.shared("default/a", failing)) for _ in range(3)]
    await settle()
    gate.set()
    outcomes = await asyncio.gather(*readers, return_exceptions=True)
    assert all(isinstance(outcome, LookupError) for outcome in outcomes)


async def test_a_reader_whose_shared_read_was_cancelled_reads_itself() -> None:
    reads, read = StatusReads(), SlowRead("a")
    leader = asyncio.create_task(reads.shared("default/a", read))
    await settle()
    follower = asyncio.create_task(reads.shared("default/a", read))
    await settle()
    leader.cancel()  # its client went away
    await settle()
    read.release.set()
    assert (await follower).run_id == "run-2"
    with pytest.raises(asyncio.CancelledError):
        await leader
