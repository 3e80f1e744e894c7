"""Recorded histories still replay: a change to a workflow that would break runs in flight
fails here (use `workflow.patched()` for such a change, and record a new history).

`dag_completed.json`: a diamond with a retried step, a selection read from Redis that aborts
one branch and its child, outputs and webhooks. `dag_failed.json`: a 404 that fails the run
while a sibling step is running (cancelled) and a dependent never starts. Both were recorded
before webhook outboxes (the run delivered its own events); `dag_webhooks.json` hands them to
its outbox, and `webhook_outbox.json` is an outbox with a refused event, its redelivery and
retries (`record_webhooks.py`). `dag_fast.json` is a fast-mode run: local calls that write
their own outputs (one retried, one aborted by its selection) and a step too long for a local
activity, scheduled as a regular one (`record_modes.py`); the others predate execution modes.

`instructions_all_types.json`: the all-types example (LLM, condition, endpoint with a retried
503, router fallback, thread, report). `instructions_failed.json`: a branch, a thread and an
endpoint answering 405, which ends the run with `InstructionFailed`.

A run whose large payloads went to the blob store replays too, reading them back from Redis.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from tests.conftest import Engine, Targets, unique
from workflows.dag.models import DagRunInput
from workflows.dag.workflow import DagWorkflow
from workflows.instructions.workflow import InstructionWorkflow
from workflows.shared.outbox import WebhookOutboxWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda path: path.stem)
async def test_recorded_history_replays(path: Path, converter: DataConverter) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    # The converter every worker has, external payload storage included.
    replayer = Replayer(
        workflows=[DagWorkflow, InstructionWorkflow, WebhookOutboxWorkflow],
        data_converter=converter,
    )
    await replayer.replay_workflow(history)


async def test_a_run_whose_payloads_are_stored_outside_history_replays(
    engine: Engine, targets: Targets, converter: DataConverter
) -> None:
    # 300 KB: past PAYLOAD_INLINE_MAX_BYTES (stored in Redis) and VALUE_INLINE_MAX_BYTES (a
    # reference in the state); the step has no outputs, so its result is stored (the patch).
    payload = DagRunInput.model_validate(
        {
            "workflow_id": unique("replay-large"),
            "namespace": "tests",
            "STEPS_CONFIG": [
                {
                    "step_name": "page",
                    "usid": "u1",
                    "method": "GET",
                    "service_url": f"{targets.url}/json/300000",
                },
                {
                    "step_name": "next",
                    "usid": "u2",
                    "service_url": f"{targets.url}/sink/{unique('replay')}",
                    "dependencies": ["page"],
                    "input_prep_config": {"body": {"page": "{{page_result}}"}},
                },
            ],
        }
    )
    payload.engine.task_queue = engine.settings.task_queue
    handle = await engine.client.start_workflow(
        DagWorkflow.run, payload, id=payload.workflow_id, task_queue=engine.settings.task_queue
    )
    result = await handle.result()
    assert result.steps["page"].result["$ref"].endswith("/steps/page/result")
    history = await handle.fetch_history()
    references = [
        event
        for event in history.events
        if b"ExternalStorageReference" in event.SerializeToString()
    ]
    assert references  # the body travelled by reference
    replayer = Replayer(workflows=[DagWorkflow], data_converter=converter)
    await replayer.replay_workflow(history)
