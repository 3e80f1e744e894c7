"""Durability: a worker process killed mid-run loses nothing, and its step is retried soon.

The worker runs as a real `worker.py` process against the dev server; it is killed with
SIGKILL while a step's HTTP call is in flight, and a fresh process finishes the run.
"""

from __future__ import annotations

import time

from temporalio.testing import WorkflowEnvironment

from tests.conftest import Targets, make_settings, unique, wait_until
from tests.e2e.processes import stop, worker_process
from workflows.dag.models import DagRunInput
from workflows.dag.workflow import DagWorkflow


async def test_killed_worker_loses_no_step_and_the_run_completes(
    dev_env: WorkflowEnvironment, redis_url: str, targets: Targets
):
    settings = make_settings(dev_env.client, redis_url)
    first, slow, last = unique("first"), unique("slow"), unique("last")
    run = DagRunInput.model_validate(
        {
            "workflow_id": unique("durable"),
            "STEPS_CONFIG": [
                {"step_name": "first", "usid": "u1", "service_url": f"{targets.url}/echo/{first}"},
                {
                    "step_name": "slow",
                    "usid": "u2",
                    "dependencies": ["first"],
                    "service_url": f"{targets.url}/slow/{slow}?ms=4000",
                },
                {
                    "step_name": "last",
                    "usid": "u3",
                    "dependencies": ["slow"],
                    "service_url": f"{targets.url}/echo/{last}",
                },
            ],
        }
    )
    run.engine.task_queue = settings.task_queue
    worker = worker_process(settings)
    replacement = None
    try:
        handle = await dev_env.client.start_workflow(
            DagWorkflow.run, run, id=run.workflow_id, task_queue=settings.task_queue
        )

        async def slow_step_in_flight() -> bool:
            return targets.state.calls[slow] == 1

        await wait_until(slow_step_in_flight)
        stop(worker, kill=True)
        killed_at = time.monotonic()
        replacement = worker_process(settings)
        result = await handle.result()
        recovery = time.monotonic() - killed_at
    finally:
        stop(worker)
        stop(replacement)

    assert result.status == "completed"
    # Finished steps are not re-run: their results come from the run's history.
    assert targets.state.calls[first] == 1
    assert targets.state.calls[slow] == 2
    assert result.steps["slow"].attempts == 2
    assert targets.state.calls[last] == 1
    # The heartbeat timeout (10 s), not the 45 s step timeout, decided when it was retried.
    assert recovery < 30
