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
`dag_segments.json` is a fast-mode run after segments: a step retried and three steps below
it in one segment, a selection step run alone, and a regular activity (`record_segments.py`).
`dag-llm-steps.json` is a fast-mode run with every step type: an `llm` step with an output
schema retried after a 503, an `instructions` step's child run, HTTP steps around them
(`record_llm_steps.py`).

`instructions_all_types.json`: the all-types example (LLM, condition, endpoint with a retried
503, router fallback, thread, report). `instructions_failed.json`: a branch, a thread and an
endpoint answering 405, which ends the run with `InstructionFailed`.
`instructions_rerun_approval.json`: a rerun (one instruction reused, an edited one run again)
whose approval instruction is paused at, approved and resumed past
(`record_instruction_control.py`).

A run whose large payloads went to the blob store replays too, reading them back from Redis.

Each history replays three times: under the SDK's default sandbox, which re-imports the
workflow modules and stops any non-deterministic call in them, under the sandbox the tests'
workers use, which passes them through (`worker.SANDBOXED_RUNNER`), and without a sandbox, as
production runs them (`worker.WORKFLOW_RUNNER`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from tests.conftest import Engine, Targets, unique
from worker import SANDBOXED_RUNNER, WORKFLOW_RUNNER
from workflows.dag.models import DagRunInput
from workflows.dag.workflow import DagWorkflow
from workflows.instructions.workflow import InstructionWorkflow
from workflows.shared.outbox import WebhookOutboxWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"


RUNNERS = {
    "strict-sandbox": SandboxedWorkflowRunner(),
    "tests-sandbox": SANDBOXED_RUNNER,
    "worker-runner": WORKFLOW_RUNNER,
}


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda path: path.stem)
async def test_recorded_history_replays(
    path: Path, runner: WorkflowRunner, converter: DataConverter
) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    # The converter every worker has, external payload storage included.
    replayer = Replayer(
        workflows=[DagWorkflow, InstructionWorkflow, WebhookOutboxWorkflow],
        workflow_runner=runner,
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


def _patches(history: WorkflowHistory) -> set[str]:
    """The ids of the `workflow.patched` calls a history recorded (its patch markers)."""
    return {
        json.loads(event.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)[
            "id"
        ]
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        and event.marker_recorded_event_attributes.marker_name == "core_patch"
    }


def _timers_started(history: WorkflowHistory) -> int:
    return sum(event.event_type == EventType.EVENT_TYPE_TIMER_STARTED for event in history.events)


async def test_the_run_deadline_patch_keeps_old_runs_on_their_path(
    engine: Engine, targets: Targets, converter: DataConverter
) -> None:
    """`workflow.patched("run-deadline")` (workflows/shared/failures.py), the README's
    example of shipping a workflow change safely: a run recorded before run deadlines
    existed scheduled no timer, and replays on today's code (which leaves the timer out for
    it); a run started today records the patch and starts its deadline timer."""
    replayer = Replayer(workflows=[DagWorkflow], data_converter=converter)
    before = WorkflowHistory.from_json(
        "dag_completed", (HISTORIES / "dag_completed.json").read_text()
    )
    assert "run-deadline" not in _patches(before)
    assert _timers_started(before) == 0
    await replayer.replay_workflow(before)

    payload = DagRunInput.model_validate(
        {
            "workflow_id": unique("replay-patch"),
            "STEPS_CONFIG": [
                {"step_name": "a", "usid": "u1", "service_url": f"{targets.url}/echo/patch"}
            ],
        }
    )
    payload.engine.task_queue = engine.settings.task_queue
    handle = await engine.client.start_workflow(
        DagWorkflow.run, payload, id=payload.workflow_id, task_queue=engine.settings.task_queue
    )
    assert (await handle.result()).status == "completed"
    after = await handle.fetch_history()
    assert "run-deadline" in _patches(after)
    assert _timers_started(after) == 1  # the run deadline
    await replayer.replay_workflow(after)
