"""Reading a run back from Temporal, whatever state it is in."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from workflows.dag import DagWorkflow
from workflows.dag_models import DagRunResult, RunError, RunState

CLOSED_STATUS: dict[WorkflowExecutionStatus, RunState] = {
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "cancelled",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
}


def failure_details(error: WorkflowFailureError) -> tuple[str, str, Any]:
    """(type, message, first detail) of the ApplicationError that failed a workflow."""
    cause = error.cause
    if isinstance(cause, ApplicationError):
        detail = cause.details[0] if cause.details else None
        return cause.type or "ApplicationError", cause.message, detail
    return type(cause).__name__, str(cause), None


async def dag_result(handle: WorkflowHandle[Any, Any]) -> DagRunResult:
    """The final result of a finished DAG run; partial results when it failed."""
    try:
        return DagRunResult.model_validate(await handle.result())
    except WorkflowFailureError as exc:
        error_type, message, detail = failure_details(exc)
        if isinstance(detail, dict) and "steps" in detail:
            return DagRunResult.model_validate(detail)
        return DagRunResult(
            workflow_id=handle.id,
            run_id=handle.result_run_id,
            status="failed",
            error=RunError(type=error_type, message=message),
        )


async def dag_status(client: Client, workflow_id: str) -> DagRunResult:
    """A DAG run live from its query, or final from its result."""
    handle = client.get_workflow_handle_for(DagWorkflow.run, workflow_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(404, f"no run with workflow_id {workflow_id!r}") from exc
        raise
    status = description.status
    if status in (
        WorkflowExecutionStatus.COMPLETED,
        WorkflowExecutionStatus.FAILED,
    ):
        return await dag_result(handle)
    try:
        result = await handle.query(DagWorkflow.get_status)
    except RPCError:
        # A run that has not begun (or was terminated before it could answer) has no state.
        return DagRunResult(workflow_id=workflow_id, run_id=description.run_id)
    closed = CLOSED_STATUS.get(status) if status is not None else None
    if closed is not None:
        result.status = closed
    return result
