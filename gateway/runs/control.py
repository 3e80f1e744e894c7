"""A person's word to a running run of either engine: approve or reject a waiting approval
step (an instruction run's named by its index), pause, resume. Each is a Temporal
Update (`DagWorkflow.approve`, `InstructionWorkflow.approve`, `pause`, `resume`), so the caller
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
from gateway.runs.instructions import INSTRUCTION_RUNS, InstructionRunView
from gateway.runs.service import RunStatusService
from kernel.errors import ErrorType
from workflows.dag.models import DagRunResult
from workflows.dag.workflow import DagWorkflow
from workflows.instructions.workflow import InstructionWorkflow
from workflows.shared.approvals import Approval, ApprovalDecision


async def approve_step(
    runs: RunStatusService, workflow_id: str, step_name: str, decision: ApprovalDecision
) -> dict[str, Any]:
    """Decide a waiting approval step for the caller's tenant; answers the step's decision
    (`{decision, comment, data, by, at}`)."""
    await _running(runs, workflow_id, (DAG_RUNS.workflow_type, INSTRUCTION_RUNS.workflow_type))
    approval = Approval(
        step_name=step_name,
        decision=decision.decision,
        comment=decision.comment,
        data=decision.data,
        by=runs.tenant.name,
    )
    try:
        # Both engines name the update `approve` and take the same `Approval`.
        answer: dict[str, Any] = await runs.handle(workflow_id).execute_update(
            "approve", approval, result_type=dict
        )
    except WorkflowUpdateFailedError as exc:
        raise _refused(exc, workflow_id) from exc
    except RPCError as exc:
        raise _ended(exc, workflow_id) from exc
    return answer


async def set_paused(
    runs: RunStatusService, workflow_id: str, paused: bool
) -> DagRunResult | InstructionRunView:
    """Pause the run (it starts no new step) or resume it, idempotently; answers its status
    as the update answers it (no published copy, which may lag by a moment, and no query
    after it, which would wait for the run's next workflow task)."""
    kind = await _running(
        runs, workflow_id, (DAG_RUNS.workflow_type, INSTRUCTION_RUNS.workflow_type)
    )
    handle = runs.handle(workflow_id)
    try:
        if kind == INSTRUCTION_RUNS.workflow_type:
            update = InstructionWorkflow.pause if paused else InstructionWorkflow.resume
            return INSTRUCTION_RUNS.answer(workflow_id, await handle.execute_update(update))
        return await handle.execute_update(DagWorkflow.pause if paused else DagWorkflow.resume)
    except RPCError as exc:
        raise _ended(exc, workflow_id) from exc


async def _running(runs: RunStatusService, workflow_id: str, types: tuple[str, ...]) -> str:
    """The running run's workflow type, one of `types`; 404 for another, 409 once ended."""
    description = await runs.describe(workflow_id, "workflow_id")
    if description.workflow_type not in types:
        what = "pipeline or instruction" if len(types) > 1 else "pipeline"
        raise RunNotFound(f"{workflow_id!r} is not a {what} run")
    if description.status != WorkflowExecutionStatus.RUNNING:
        state = description.status.name.lower() if description.status else "unknown"
        raise RunConflict(f"run {workflow_id!r} has already ended ({state})")
    return description.workflow_type


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
