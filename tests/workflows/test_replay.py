"""Recorded histories still replay: a change to a workflow that would break runs in flight
fails here (use `workflow.patched()` for such a change, and record a new history).

`dag_completed.json`: a diamond with a retried step, a selection read from Redis that aborts
one branch and its child, outputs and webhooks. `dag_failed.json`: a 404 that fails the run
while a sibling step is running (cancelled) and a dependent never starts.

`instructions_all_types.json`: the all-types example (LLM, condition, endpoint with a retried
503, router fallback, thread, report). `instructions_failed.json`: a branch, a thread and an
endpoint answering 405, which ends the run with `InstructionFailed`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.conftest import TEST_DATA_CONVERTER
from workflows.dag.workflow import DagWorkflow
from workflows.instructions.workflow import InstructionWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda path: path.stem)
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    # Recorded before payload encryption: the codec passes their payloads through.
    replayer = Replayer(
        workflows=[DagWorkflow, InstructionWorkflow], data_converter=TEST_DATA_CONVERTER
    )
    await replayer.replay_workflow(history)
