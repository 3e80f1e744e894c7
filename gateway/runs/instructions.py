"""How the gateway reads instruction runs (`InstructionWorkflow`): `INSTRUCTION_RUNS`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio.client import WorkflowExecutionStatus

from gateway.runs.engine import RunEngine
from workflows.instructions.models import (
    InstructionRunInput,
    InstructionRunStatus,
    RunError,
)
from workflows.instructions.workflow import InstructionWorkflow
from workflows.shared.runs import InstructionRunState


class InstructionRunView(InstructionRunStatus):
    """An instruction run as `GET /?instanceId=` and `GET /runs/{id}` answer it."""

    instance_id: str


class InstructionRuns(RunEngine[InstructionRunView, InstructionRunInput, InstructionRunState]):
    """Instruction runs: a running run no worker answers for is a 503 naming its task queue."""

    workflow = InstructionWorkflow
    kind = "an instruction run"
    input_model = InstructionRunInput
    closed_status: Mapping[WorkflowExecutionStatus, InstructionRunState] = {
        WorkflowExecutionStatus.CANCELED: "terminated",
        WorkflowExecutionStatus.TERMINATED: "terminated",
        WorkflowExecutionStatus.TIMED_OUT: "errored",
    }
    needs_worker = True

    def answer(self, workflow_id: str, status: Any) -> InstructionRunView:
        status = InstructionRunStatus.model_validate(status)
        return InstructionRunView(instance_id=workflow_id, **dict(status))

    def queued(
        self, workflow_id: str, run_id: str, run: InstructionRunInput | None
    ) -> InstructionRunStatus:
        if run is not None and run.resume is not None:
            return run.resume.status  # continued as new, not picked up yet
        if run is not None:
            return InstructionRunStatus.for_input(run)
        return InstructionRunStatus()

    def failed(
        self, workflow_id: str, run_id: str | None, error_type: str, message: str, cancelled: bool
    ) -> InstructionRunView:
        error = RunError(type=error_type, message=message)
        return self.answer(workflow_id, InstructionRunStatus(status="errored", error=error))

    def close(self, answer: InstructionRunView, state: InstructionRunState) -> None:
        answer.status = state
        if state == "errored" and answer.error is None:
            answer.error = RunError(
                type="TimedOut", message="the run exceeded its execution timeout"
            )


INSTRUCTION_RUNS = InstructionRuns()
