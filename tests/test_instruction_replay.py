"""Recorded InstructionWorkflow histories still replay: a change to the workflow that would break
runs in flight fails here (use `workflow.patched()` for such a change, and record a new history).

`instructions_all_types.json`: the all-types example (LLM, condition, endpoint with a retried
503, router fallback, thread, report). `instructions_failed.json`: a branch, a thread and an
endpoint answering 405, which ends the run with `InstructionFailed`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.instructions import InstructionWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"


@pytest.mark.parametrize(
    "path", sorted(HISTORIES.glob("instructions_*.json")), ids=lambda path: path.stem
)
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[InstructionWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)
