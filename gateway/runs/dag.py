"""How the gateway reads DAG pipeline runs (`DagWorkflow`): `DAG_RUNS`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus

from gateway.runs.engine import RunEngine
from kernel.redact import redact_urls
from workflows.dag.models import (
    DagRunInput,
    DagRunResult,
    Progress,
    RunError,
    StepState,
)
from workflows.dag.rerun import reuse_steps
from workflows.dag.workflow import DagWorkflow, step_activity_id
from workflows.shared.runs import DagRunState


class DagRuns(RunEngine[DagRunResult, DagRunInput, DagRunState]):
    """DAG pipelines: a step being retried shows its attempt and last failure."""

    workflow = DagWorkflow
    kind = "a DAG pipeline"
    input_model = DagRunInput
    closed_status: Mapping[WorkflowExecutionStatus, DagRunState] = {
        WorkflowExecutionStatus.CANCELED: "cancelled",
        WorkflowExecutionStatus.TERMINATED: "cancelled",
        WorkflowExecutionStatus.TIMED_OUT: "failed",
    }

    def answer(self, workflow_id: str, status: Any) -> DagRunResult:
        return DagRunResult.model_validate(status)

    def queued(self, workflow_id: str, run_id: str, run: DagRunInput | None) -> DagRunResult:
        if run is not None and run.resume is not None:
            # A run that continued as new, not picked up yet: where the chain had got to.
            return run.resume.result.model_copy(update={"run_id": run_id})
        steps = {
            step.step_name: StepState(step_name=step.step_name, usid=step.usid)
            for step in (run.STEPS_CONFIG if run is not None else [])
        }
        queued = DagRunResult(
            workflow_id=workflow_id,
            run_id=run_id,
            namespace=run.namespace if run is not None else "default",
            steps=steps,
            progress=Progress(total=len(steps)),
        )
        if run is not None and run.rerun is not None:
            reuse_steps(queued, run.rerun)
            queued.progress.completed = len(run.rerun.steps)
        return queued

    def failed(
        self, workflow_id: str, run_id: str | None, error_type: str, message: str, cancelled: bool
    ) -> DagRunResult:
        return DagRunResult(
            workflow_id=workflow_id,
            run_id=run_id,
            # As `GET /runs` reports a cancelled or terminated run.
            status="cancelled" if cancelled else "failed",
            error=RunError(type=error_type, message=message),
        )

    def close(self, answer: DagRunResult, state: DagRunState) -> None:
        answer.status = state

    def add_live_state(
        self, answer: DagRunResult, description: WorkflowExecutionDescription
    ) -> None:
        """Show a running step's current attempt and last failure while Temporal retries it."""
        for pending in description.raw_description.pending_activities:
            for name, step in answer.steps.items():
                if step.status == "running" and pending.activity_id == step_activity_id(name):
                    step.attempts = pending.attempt
                    if pending.HasField("last_failure"):
                        # Redacted at the source too; this holds for any failure.
                        step.last_failure = redact_urls(pending.last_failure.message)
                    if pending.HasField("next_attempt_schedule_time"):
                        step.next_attempt_at = pending.next_attempt_schedule_time.ToDatetime(
                            tzinfo=UTC
                        )


DAG_RUNS = DagRuns()
