"""Reruns of DAG runs (`POST /runs/{workflow_id}/rerun`): read the source run back, lay the
edits over its pipeline, decide which steps are reused (`workflows.dag.rerun`) and start the
new run with their recorded states in its input.

The source is read as `GET /runs/{id}` reads it: its final result (a failed run's is in its
failure's details; a chain that continued as new hands every step to its last run), else,
for a cancelled or terminated run, its status query. Its pipeline is the input its latest run
was started with: a run that continued as new carries the same steps.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle

from gateway.errors import RunConflict, RunNotFound, validation_detail
from gateway.runs.dag import DAG_RUNS
from gateway.runs.service import RunStatusService
from workflows.dag.models import DagRunInput, DagRunResult, PipelineRequest, RerunRequest
from workflows.dag.workflow import DagWorkflow

#: How many `<id>.rerun-<n>` ids are tried for a free one.
MAX_RERUNS = 1000

InputT = TypeVar("InputT", bound=BaseModel)


class RerunInvalid(Exception):
    """The edited pipeline does not validate: `detail` is the 422 body's, as `/execute`'s."""

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        super().__init__("the edited pipeline is invalid")
        self.detail = detail


async def read_source(
    runs: RunStatusService, workflow_id: str, description: WorkflowExecutionDescription
) -> tuple[DagRunInput, DagRunResult]:
    """The source run's input and final state, from the run `description` (the route's);
    404 when it is no pipeline run, 409 while it runs (a rerun takes results that will not
    change)."""
    if description.workflow_type != DAG_RUNS.workflow_type:
        raise RunNotFound(f"{workflow_id!r} is not a DAG pipeline run (only those rerun yet)")
    if description.status == WorkflowExecutionStatus.RUNNING:
        raise RunConflict(f"run {workflow_id!r} is still running; cancel it or wait for its end")
    handle = runs.handle(workflow_id)
    result = await runs.result(DAG_RUNS, handle)
    if not result.steps:
        # Cancelled or terminated: its last state is the one its query answers.
        result = DAG_RUNS.answer(workflow_id, await handle.query(DagWorkflow.get_status))
    return await started_input(runs, handle, DagRunInput), result


async def started_input(
    runs: RunStatusService, handle: WorkflowHandle[Any, Any], model: type[InputT]
) -> InputT:
    """The input the run's latest execution was started with (a chain's last run's)."""
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [started] = await runs.client.data_converter.decode(payloads[:1])
        return model.model_validate(started)
    raise RunNotFound(f"run {handle.id!r} has no history")


async def free_rerun_id(runs: RunStatusService, workflow_id: str) -> str:
    """`<workflow_id>.rerun-<n>` with the first n that names no run of the tenant."""
    for n in range(1, MAX_RERUNS + 1):
        candidate = f"{workflow_id}.rerun-{n}"
        try:
            await runs.describe(candidate, "workflow_id")
        except RunNotFound:
            return candidate
    raise RunConflict(f"run {workflow_id!r} has been rerun {MAX_RERUNS} times; name the rerun")


def edited_pipeline(
    source: DagRunInput, request: RerunRequest, workflow_id: str, steps: list[dict[str, Any]]
) -> PipelineRequest:
    """The source's pipeline under its new id with the edited steps (and input), validated
    by the model `POST /execute` takes; `RerunInvalid` naming the field otherwise."""
    pipeline = source.model_dump(mode="json", exclude={"engine", "resume", "rerun"})
    pipeline.update(workflow_id=workflow_id, STEPS_CONFIG=steps)
    if request.input_data is not None:
        pipeline["input_data"] = request.input_data
    try:
        return PipelineRequest.model_validate(pipeline)
    except ValidationError as exc:
        errors = [{**error, "loc": ["body", *error["loc"]]} for error in exc.errors()]
        raise RerunInvalid(validation_detail(errors, PipelineRequest)) from exc
