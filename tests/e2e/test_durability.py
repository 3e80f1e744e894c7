"""Durability: a worker process killed mid-run loses nothing, and its step is retried soon.

The worker runs as a real `worker.py` process against the dev server; it is killed with
SIGKILL while a step's HTTP call is in flight, and a fresh process finishes the run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from settings import Settings
from tests.conftest import LOOPBACK, Targets, make_settings, unique, wait_until
from workflows.dag.models import DagRunInput
from workflows.dag.workflow import DagWorkflow

ROOT = Path(__file__).resolve().parents[2]


def worker_process(settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.effective_temporal_address,
        "REDIS_URL": settings.effective_redis_url,
        "TASK_QUEUE": settings.task_queue,
        "OUTBOUND_ALLOW": ",".join(LOOPBACK),
    }
    return subprocess.Popen(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


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
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        killed_at = time.monotonic()
        replacement = worker_process(settings)
        result = await handle.result()
        recovery = time.monotonic() - killed_at
    finally:
        for process in (worker, replacement):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)

    assert result.status == "completed"
    # Finished steps are not re-run: their results come from the run's history.
    assert targets.state.calls[first] == 1
    assert targets.state.calls[slow] == 2
    assert result.steps["slow"].attempts == 2
    assert targets.state.calls[last] == 1
    # The heartbeat timeout (10 s), not the 45 s step timeout, decided when it was retried.
    assert recovery < 30
