"""Control within a second: how a cancel, a signal or update, and a run's deadline reach a run
promptly while local activities run.

A local activity runs inside the workflow task that scheduled it: the SDK (sdk-core) holds
that task open until the local work ends, completing it only as a heartbeat when 80 % of the
workflow task timeout has passed. Until the task completes, the server can hand the run
nothing new: a cancel request, a signal or an update waits in its history, and the commands
the workflow made in that task (its deadline's timer among them) have not reached the server.
With Temporal's default 10 s task timeout that is 8 s: measured on `make dev` with a 20 s
local step, a cancel took 6.6 s and a 3 s `run_timeout` ended the run after 16 s.

In `auto` and `fast` modes the gateway starts the runs that may run local work
(`workflows.dag.placement`; for an instruction run, any mode but `durable`) with a workflow
task timeout of `CONTROL_TASK_TIMEOUT` (0.75 s): a task held open by local work then heartbeats
every 0.6 s, and each heartbeat hands the run what arrived meanwhile (the SDK then cancels
the local work at once). A deadline's timer reaches the server with the first heartbeat, at
most 0.6 s late, and its firing reaches the run with the next one: a 3 s `run_timeout` ends
the run after about 3.7 s (measured: `bench/control_latency.py`).

An update (pause, resume, approve) needs two heartbeats while local work runs: one brings
it in, and its answer waits in the SDK for the next, since the SDK completes no task while
a local activity is outstanding (sdk-core's `ManagedRun`, `WFT_HEARTBEAT_TIMEOUT_FRACTION`):
at most 1.2 s, about 0.8 s measured. So the updates answer the run's status themselves: a
query after them would wait for a third heartbeat (2.4 s measured with a 1 s timeout and a
query). A cancel needs one heartbeat: the SDK cancels the local work, which ends the task.

Sending the timer before any local work (completing the first task on a short timer of its
own) was tried and left out: the dev server fires a 1 ms timer about a second late, so every
such run took a second longer to save 0.6 s on its deadline; a run cannot signal itself.

What it costs: a local step longer than 0.6 s adds a workflow task per 0.6 s it runs (three
history events each; none for shorter steps). A workflow task that itself computes for more
than 0.75 s (replaying a long history on a loaded worker) times out and is tried again;
histories stay short (runs continue as new), and runs with no local work keep Temporal's
default (an `auto` run with the default 45 s `step_timeout` among them).
"""

from __future__ import annotations

from datetime import timedelta

#: The workflow task timeout of runs that may run local work: the SDK heartbeats a task held
#: open by local work at 80 % of it.
CONTROL_TASK_TIMEOUT = timedelta(milliseconds=750)
#: Runs with more steps than this keep Temporal's default task timeout whatever they run: a
#: task that decodes, validates and schedules thousands of steps may need more than 0.75 s
#: of CPU on a loaded worker, and a task that always outlasts its timeout is retried for ever.
#: Such runs are controlled within about 8 s instead.
CONTROL_MAX_STEPS = 500


def workflow_task_timeout(may_run_local: bool, steps: int = 1) -> timedelta | None:
    """The workflow task timeout to start a run of `steps` steps with; None for Temporal's
    default, for a run that runs no local work and so holds no task open (its activities are
    the server's), or one too large for a short task (`CONTROL_MAX_STEPS`)."""
    return CONTROL_TASK_TIMEOUT if may_run_local and steps <= CONTROL_MAX_STEPS else None
