"""A person's word to a running DAG run: approve or reject a waiting approval step, pause,
resume. Each is a Temporal Update (`DagWorkflow.approve`, `pause`, `resume`), so the caller
learns at once whether the run took it; the approval's validator refuses a step that is not
waiting (409) and data that breaks the step's schema (422) before anything is recorded.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from gateway.errors import InvalidRequest, RunConflict, RunNotFound
from gateway.runs.dag import DAG_RUNS
from gateway.runs.service import RunStatusService
from kernel.errors import ErrorType
from workflows.dag.approvals import Approval, ApprovalDecision
from workflows.dag.models import DagRunResult
from workflows.dag.workflow import DagWorkflow


async def approve_step(
    runs: RunStatusService, workflow_id: str, step_name: str, decision: ApprovalDecision
) -> dict[str, Any]:
    """Decide a waiting approval step for the caller's tenant; answers the step's decision
    (`{decision, comment, data, by, at}`)."""
    await _running_dag(runs, workflow_id)
    approval = Approval(
        step_name=step_name,
        decision=decision.decision,
        comment=decision.comment,
        data=decision.data,
        by=runs.tenant.name,
    )
    try:
        answer: dict[str, Any] = await runs.handle(workflow_id).execute_update(
            DagWorkflow.approve, approval
        )
    except WorkflowUpdateFailedError as exc:
        raise _refused(exc, workflow_id) from exc
    except RPCError as exc:
        raise _ended(exc, workflow_id) from exc
    return answer


async def set_paused(runs: RunStatusService, workflow_id: str, paused: bool) -> DagRunResult:
    """Pause the run (it starts no new step) or resume it, idempotently; answers its status
    as the update answers it (no published copy, which may lag by a moment, and no query
    after it, which would wait for the run's next workflow task)."""
    await _running_dag(runs, workflow_id)
    update = DagWorkflow.pause if paused else DagWorkflow.resume
    handle = runs.handle(workflow_id)
    try:
        return await handle.execute_update(update)
    except RPCError as exc:
        raise _ended(exc, workflow_id) from exc


async def _running_dag(runs: RunStatusService, workflow_id: str) -> None:
    description = await runs.describe(workflow_id, "workflow_id")
    if description.workflow_type != DAG_RUNS.workflow_type:
        raise RunNotFound(f"{workflow_id!r} is not a pipeline run")
    if description.status != WorkflowExecutionStatus.RUNNING:
        state = description.status.name.lower() if description.status else "unknown"
        raise RunConflict(f"run {workflow_id!r} has already ended ({state})")


def _refused(exc: WorkflowUpdateFailedError, workflow_id: str) -> Exception:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        if cause.type == ErrorType.INVALID_APPROVAL_DATA:
            return InvalidRequest(cause.message)
        if cause.type == ErrorType.NOT_WAITING:
            return RunConflict(f"run {workflow_id!r}: {cause.message}")
    return exc


def _ended(exc: RPCError, workflow_id: str) -> Exception:
    """The run ended between its description and the update (Temporal aborts an update
    still waiting for the run's workflow task when the run closes)."""
    if exc.status == RPCStatusCode.NOT_FOUND:
        return RunConflict(f"run {workflow_id!r} has already ended")
    return exc
