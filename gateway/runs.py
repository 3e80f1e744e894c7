"""Reading a run back from Temporal, whatever state it is in."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any, TypeVar

from fastapi import HTTPException
from pydantic import ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.exceptions import ApplicationError, CancelledError, TerminatedError
from temporalio.service import RPCError, RPCStatusCode

from workflows.dag.models import (
    DagRunInput,
    DagRunResult,
    Progress,
    RunError,
    RunState,
    StepState,
)
from workflows.dag.workflow import DagWorkflow, step_activity_id
from workflows.instructions.models import InstructionRunInput, InstructionRunStatus
from workflows.instructions.models import RunError as InstructionRunError
from workflows.instructions.models import RunState as InstructionRunState
from workflows.instructions.workflow import InstructionWorkflow

#: A query is answered by a worker in milliseconds; waiting longer only hides a missing worker.
STATUS_QUERY_TIMEOUT = timedelta(seconds=10)

T = TypeVar("T")

INSTRUCTION_WORKFLOW = InstructionWorkflow.__name__
#: Started, task scheduled, task started, task completed: from then on the run can be queried.
FIRST_TASK_DONE_EVENTS = 4

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
    except ValidationError as exc:
        # `POST /execute` attached to a running workflow of another kind with this id.
        raise HTTPException(
            409, f"workflow_id {handle.id!r} belongs to a run that is not a DAG pipeline"
        ) from exc
    except WorkflowFailureError as exc:
        error_type, message, detail = failure_details(exc)
        if isinstance(detail, dict) and isinstance(detail.get("steps"), dict):
            return DagRunResult.model_validate(detail)
        cancelled = isinstance(exc.cause, CancelledError | TerminatedError)
        return DagRunResult(
            workflow_id=handle.id,
            run_id=handle.result_run_id,
            # As `GET /runs` reports a cancelled or terminated run.
            status="cancelled" if cancelled else "failed",
            error=RunError(type=error_type, message=message),
        )


async def describe_run(
    handle: WorkflowHandle[Any, Any], what: str = "workflow_id"
) -> WorkflowExecutionDescription:
    """The run's Temporal description; 404 when there is no such workflow."""
    try:
        return await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(404, f"no run with {what} {handle.id!r}") from exc
        raise


async def run_status(client: Client, workflow_id: str) -> DagRunResult | InstructionRunView:
    """Any run's state, whichever engine ran it: one describe, then its engine's reader."""
    description = await describe_run(client.get_workflow_handle(workflow_id))
    if description.workflow_type == INSTRUCTION_WORKFLOW:
        return await instruction_status(client, workflow_id, description)
    if description.workflow_type == DagWorkflow.__name__:
        return await dag_status(client, workflow_id, description)
    raise HTTPException(
        404,
        f"{workflow_id!r} is a {description.workflow_type}, not a pipeline or instruction run;"
        " see it in the Temporal Web UI",
    )


async def dag_status(
    client: Client, workflow_id: str, description: WorkflowExecutionDescription | None = None
) -> DagRunResult:
    """A DAG run live from its query, or final from its result."""
    handle = client.get_workflow_handle_for(DagWorkflow.run, workflow_id)
    if description is None:
        description = await describe_run(handle)
    status = description.status
    if status in (
        WorkflowExecutionStatus.COMPLETED,
        WorkflowExecutionStatus.FAILED,
    ):
        return await dag_result(handle)
    if description.history_length < FIRST_TASK_DONE_EVENTS:
        # No worker has picked it up yet: a query would wait for one, so answer from the input.
        return await pending_dag(client, handle, description)
    try:
        result = await handle.query(DagWorkflow.get_status, rpc_timeout=STATUS_QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError):
        # Terminated before it could answer, or no worker answered in time.
        result = await pending_dag(client, handle, description)
    closed = CLOSED_STATUS.get(status) if status is not None else None
    if closed is not None:
        result.status = closed
    else:
        add_retry_state(result, description)
    return result


async def pending_dag(
    client: Client, handle: WorkflowHandle[Any, Any], description: WorkflowExecutionDescription
) -> DagRunResult:
    """A DAG run whose workflow cannot answer yet: its steps, all pending, from its input."""
    run = await started_input(client, handle, DagRunInput)
    steps = {
        step.step_name: StepState(step_name=step.step_name, usid=step.usid)
        for step in (run.STEPS_CONFIG if run is not None else [])
    }
    return DagRunResult(
        workflow_id=handle.id,
        run_id=description.run_id,
        namespace=run.namespace if run is not None else "default",
        steps=steps,
        progress=Progress(total=len(steps)),
    )


def add_retry_state(result: DagRunResult, description: WorkflowExecutionDescription) -> None:
    """Show a running step's current attempt and last failure while Temporal retries it."""
    for pending in description.raw_description.pending_activities:
        for name, step in result.steps.items():
            if step.status == "running" and pending.activity_id == step_activity_id(name):
                step.attempts = pending.attempt
                if pending.HasField("last_failure"):
                    step.last_failure = pending.last_failure.message
                if pending.HasField("next_attempt_schedule_time"):
                    step.next_attempt_at = pending.next_attempt_schedule_time.ToDatetime(tzinfo=UTC)


INSTRUCTION_CLOSED_STATUS: dict[WorkflowExecutionStatus, InstructionRunState] = {
    WorkflowExecutionStatus.CANCELED: "terminated",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "errored",
}


async def started_input(
    client: Client, handle: WorkflowHandle[Any, Any], model: type[T]
) -> T | None:
    """The input a run was started with, read from its first history event."""
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        if payloads:
            [run] = await client.data_converter.decode(payloads[:1], [model])
            return run  # type: ignore[no-any-return]
        break
    return None


async def queued_status(client: Client, handle: WorkflowHandle[Any, Any]) -> InstructionRunStatus:
    """The status of a run no worker has picked up: every step pending, read from its input."""
    run = await started_input(client, handle, InstructionRunInput)
    return InstructionRunStatus.for_input(run) if run is not None else InstructionRunStatus()


class InstructionRunView(InstructionRunStatus):
    """An instruction run as `GET /?instanceId=` and `GET /runs/{id}` answer it."""

    instance_id: str


async def instruction_status(
    client: Client,
    instance_id: str,
    description: WorkflowExecutionDescription | None = None,
) -> InstructionRunView:
    """An instruction run live from its query, final from its result, or from the failure's
    details (the status when the failing step gave up)."""
    handle = client.get_workflow_handle_for(InstructionWorkflow.run, instance_id)
    if description is None:
        description = await describe_run(handle, "instanceId")
    status = description.status
    result: InstructionRunStatus
    if status == WorkflowExecutionStatus.COMPLETED:
        result = InstructionRunStatus.model_validate(await handle.result())
    elif status == WorkflowExecutionStatus.FAILED:
        try:
            result = InstructionRunStatus.model_validate(await handle.result())
        except WorkflowFailureError as exc:
            error_type, message, detail = failure_details(exc)
            if isinstance(detail, dict) and "steps" in detail:
                result = InstructionRunStatus.model_validate(detail)
            else:
                result = InstructionRunStatus(
                    status="errored", error=InstructionRunError(type=error_type, message=message)
                )
    elif description.history_length < FIRST_TASK_DONE_EVENTS:
        # No worker has picked it up yet: a query would wait for one, so answer from the input.
        result = await queued_status(client, handle)
    else:
        try:
            result = await handle.query(
                InstructionWorkflow.get_status, rpc_timeout=STATUS_QUERY_TIMEOUT
            )
        except (RPCError, WorkflowQueryFailedError) as exc:
            if status == WorkflowExecutionStatus.RUNNING:
                raise HTTPException(
                    503,
                    f"run {instance_id!r} did not answer its status query ({exc}); is a worker"
                    f" polling task queue {description.task_queue!r}?",
                ) from exc
            result = await queued_status(client, handle)
        closed = INSTRUCTION_CLOSED_STATUS.get(status) if status is not None else None
        if closed is not None:
            result.status = closed
            if closed == "errored" and result.error is None:
                result.error = InstructionRunError(
                    type="TimedOut", message="the run exceeded its execution timeout"
                )
    return InstructionRunView(instance_id=instance_id, **dict(result))
