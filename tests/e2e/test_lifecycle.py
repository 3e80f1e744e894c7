"""A worker stopped the way orchestrators stop it (SIGTERM) drains: the step it is running
finishes, nothing is attempted twice, and the process exits cleanly."""

from __future__ import annotations

import asyncio
import signal
import time

from temporalio.testing import WorkflowEnvironment

from tests.conftest import Targets, make_settings, unique, wait_until
from tests.e2e.processes import worker_process
from workflows.dag.models import DagRunInput
from workflows.dag.workflow import DagWorkflow


async def test_a_sigtermed_worker_finishes_its_step_and_exits_0(
    dev_env: WorkflowEnvironment, redis_url: str, targets: Targets
) -> None:
    settings = make_settings(dev_env.client, redis_url)
    slow = unique("slow")
    run = DagRunInput.model_validate(
        {
            "workflow_id": unique("drain"),
            "STEPS_CONFIG": [
                {
                    "step_name": "slow",
                    "usid": "u1",
                    "service_url": f"{targets.url}/slow/{slow}?ms=5000",
                }
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
        await wait_until(lambda: _started(targets, slow))
        stopped_at = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        # Waited for off the event loop: the target answering the step is served on it.
        exit_code = await asyncio.to_thread(worker.wait, 30)
        drained_in = time.monotonic() - stopped_at
        # The run's last workflow task needs a worker; the drained one no longer polls.
        replacement = worker_process(settings)
        result = await handle.result()
    finally:
        for process in (worker, replacement):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)

    assert exit_code == 0
    assert 2 < drained_in < 25  # it waited for the step (5 s), not for nothing nor for ever
    assert result.status == "completed"
    assert result.steps["slow"].attempts == 1
    assert targets.state.calls[slow] == 1


async def _started(targets: Targets, key: str) -> bool:
    return targets.state.calls[key] == 1
