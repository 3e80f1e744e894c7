"""Control within a second: how a cancel, a signal or update, and a run's deadline reach a run
promptly while local activities run.

A local activity runs inside the workflow task that scheduled it: the SDK (sdk-core) holds
that task open until the local work ends, completing it only as a heartbeat when 80 % of the
workflow task timeout has passed. Until the task completes, the server can hand the run
nothing new: a cancel request, a signal or an update waits in its history, and the commands
the workflow made in that task (its deadline's timer among them) have not reached the server.
With Temporal's default 10 s task timeout that is 8 s: measured on `make dev` with a 20 s
local step, a cancel took 6.6 s and a 3 s `run_timeout` ended the run after 16 s.

Two things bring that under a second in `auto` and `fast` modes:
- the gateway starts the runs that may run local work (`workflows.dag.placement`; for an
  instruction run, any mode but `durable`) with a workflow task timeout of
  `CONTROL_TASK_TIMEOUT` (1 s), so a task held open by local work heartbeats every 0.8 s,
  and each heartbeat hands the run what arrived meanwhile (the SDK then cancels the local
  work at once);
- a run with a short deadline sends its timer before any local work
  (`deadline_before_local_work`): one short timer makes the first task complete with the
  deadline's timer in it. A longer deadline (the default is 6 hours) is at most one
  heartbeat (0.8 s) late without it, which no one notices.

What it costs: a local step longer than 0.8 s adds a workflow task per 0.8 s it runs (three
history events each; none for shorter steps), and a run with a deadline under
`SHORT_DEADLINE` one more task at its start. A workflow task that itself computes for more
than a second (replaying a long history on a loaded worker) times out and is tried again;
histories stay short (runs continue as new), and runs with no local work keep Temporal's
default (an `auto` run with the default 45 s `step_timeout` among them).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

#: The workflow task timeout of runs that may run local work: the SDK heartbeats a task held
#: open by local work at 80 % of it.
CONTROL_TASK_TIMEOUT = timedelta(seconds=1)
#: Runs started before this patch sent their deadline's timer with their first local work.
DEADLINE_FIRST_PATCH = "deadline-before-local-work"
#: A deadline this close is sent before local work; a later one may start a heartbeat late.
SHORT_DEADLINE = timedelta(minutes=1)
#: The timer that makes the first workflow task complete: any duration the server takes.
_FLUSH = timedelta(milliseconds=1)


def workflow_task_timeout(may_run_local: bool) -> timedelta | None:
    """The workflow task timeout to start a run with; None for Temporal's default, for a run
    that runs no local work and so holds no task open (its activities are the server's)."""
    return CONTROL_TASK_TIMEOUT if may_run_local else None


async def deadline_before_local_work(
    deadline: asyncio.Task[None] | None, run_timeout: float | None, local_work: bool
) -> None:
    """Complete the current workflow task before the run schedules local work, so the
    deadline's timer (created just before) starts on the server now, not when the local work
    first lets the task complete; for a deadline under `SHORT_DEADLINE` only."""
    if (
        deadline is None
        or run_timeout is None
        or run_timeout >= SHORT_DEADLINE.total_seconds()
        or not local_work
        or not workflow.patched(DEADLINE_FIRST_PATCH)
    ):
        return
    await workflow.sleep(_FLUSH, summary="send the deadline before local work")
