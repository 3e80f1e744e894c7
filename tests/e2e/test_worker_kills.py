"""Fault: the worker SIGKILLed again and again under a few runs; the small version of
`bench/soak_worker_kills.py` (see there for what is counted)."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from bench.soak_worker_kills import OPEN, STEP_NAMES, soak
from gateway.starts import dag_engine_options
from tests.conftest import Targets, make_settings, unique, wait_until
from tests.e2e.processes import stop, worker_process
from workflows.dag.models import DagRunInput, DagRunResult
from workflows.dag.workflow import DagWorkflow

log = logging.getLogger(__name__)


async def test_runs_complete_through_repeated_worker_kills_without_extra_deliveries(
    dev_env: WorkflowEnvironment, redis_url: str, targets: Targets, tmp_path: Path
) -> None:
    settings = make_settings(dev_env.client, redis_url)
    report = await soak(
        dev_env.client,
        settings,
        targets.url,
        targets.state,
        kills=3,
        runs=2,
        rng=random.Random(8),
        logs=tmp_path,
        # Soon after a call starts (calls take 0.3 s or more), so kills find calls to cut off.
        kill_delay=(0.0, 0.2),
        drain_timeout=120,
    )
    log.info("soak: %s", report.summary())
    assert report.failures == {}
    assert report.completed == report.runs == 2 + 3  # one more started after each kill
    assert report.kills == 3
    assert report.steps == len(STEP_NAMES) * report.runs
    assert report.kills_that_hit >= 1  # the kills found step calls to cut off
    # Each step's target saw its key at least once, and once more at most per kill that hit it.
    assert report.over_limit == {}
    assert all(count >= 1 for count in report.deliveries.values())


async def test_a_step_with_no_retries_left_fails_naming_the_lost_worker(
    dev_env: WorkflowEnvironment, redis_url: str, targets: Targets, tmp_path: Path
) -> None:
    settings = make_settings(dev_env.client, redis_url)
    key = unique("cut-off")
    run = DagRunInput.model_validate(
        {
            "workflow_id": unique("no-retries"),
            "STEPS_CONFIG": [
                {
                    "step_name": "only",
                    "usid": "u1",
                    "service_url": f"{targets.url}/work/{key}?ms=5000",
                    "max_retries": 0,
                }
            ],
            # A regular activity: its heartbeat timeout is what notices the lost worker.
            "PIPELINE_SETTINGS": {"execution": {"mode": "durable"}},
        }
    )
    run.engine = dag_engine_options(settings, OPEN, run)
    worker = worker_process(settings, tmp_path / "worker.log")
    replacement = None
    try:
        handle = await dev_env.client.start_workflow(
            DagWorkflow.run, run, id=run.workflow_id, task_queue=settings.task_queue
        )

        async def call_in_flight() -> bool:
            return targets.state.calls[key] == 1

        await wait_until(call_in_flight, timeout=60)
        stop(worker, kill=True)
        replacement = worker_process(settings, tmp_path / "replacement.log")
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    finally:
        stop(worker)
        stop(replacement)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "PipelineFailed"
    error = DagRunResult.model_validate(cause.details[0]).error
    assert error is not None and (error.step_name, error.type) == ("only", "Timeout")
    # Says what happened and what to change, not only that something timed out.
    assert error.message == (
        "step 'only': attempt timed out (HEARTBEAT): the worker making the call stopped"
        " reporting for 10s (it crashed, was killed, or lost Temporal) and no retry was left;"
        " max_retries lets a step ride out worker restarts"
    )
    assert targets.state.calls[key] == 1
