"""Reruns of instruction runs (`POST /runs/{workflow_id}/rerun` on a run of `POST /`): read
the source back, lay the edits over its instructions, plan what is reused
(`workflows.instructions.rerun`) and start the new run with it in its input.

The source is read as `GET /runs/{id}` reads it: its final status (a failed run's is in its
failure's details; a chain that continued as new carries every step to its last run), else,
for a cancelled or terminated run, its status query. Its instructions are the input its latest
run was started with: a run that continued as new carries the same ones.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from temporalio.client import WorkflowExecutionStatus

from gateway.errors import InvalidRequest, RunConflict
from gateway.reruns import RerunInvalid, started_input
from gateway.runs.instructions import INSTRUCTION_RUNS
from gateway.runs.service import RunStatusService
from workflows.dag.models import RerunRequest
from workflows.instructions.models import (
    InstructionRunInput,
    InstructionRunRequest,
    InstructionRunStatus,
    error_details,
)
from workflows.instructions.workflow import InstructionWorkflow

#: The body's fields for DAG runs, and for instruction runs: each engine refuses the other's.
DAG_FIELDS = ("from_step", "steps", "input_data")
INSTRUCTION_FIELDS = ("from_instruction", "instructions", "context")


def other_engines_fields(request: RerunRequest, instruction_run: bool) -> None:
    """Refuse (422) a field that only the other engine's runs take, naming it."""
    fields, kind = (DAG_FIELDS, "DAG") if instruction_run else (INSTRUCTION_FIELDS, "instruction")
    given = [field for field in fields if field in request.model_fields_set]
    if given:
        raise InvalidRequest(
            f"{given[0]}: only {kind} runs take it; this is "
            + ("an instruction run" if instruction_run else "a DAG run")
        )


async def read_instruction_source(
    runs: RunStatusService, workflow_id: str, state: WorkflowExecutionStatus | None
) -> tuple[InstructionRunInput, InstructionRunStatus]:
    """The source run's input and final status; 409 while it runs (a rerun takes results
    that will not change)."""
    if state == WorkflowExecutionStatus.RUNNING:
        raise RunConflict(f"run {workflow_id!r} is still running; cancel it or wait for its end")
    handle = runs.handle(workflow_id)
    view = await runs.result(INSTRUCTION_RUNS, handle)
    status: InstructionRunStatus = view
    if not status.steps:
        # Cancelled or terminated: its last state is the one its query answers.
        status = await handle.query(InstructionWorkflow.get_status)
    return await started_input(runs, handle, InstructionRunInput), status


def edited_run(
    source: InstructionRunInput, request: RerunRequest, instructions: list[Any]
) -> InstructionRunRequest:
    """The source's run with the edited instructions (and context), validated by the model
    `POST /` takes; `RerunInvalid` naming the instruction and field otherwise."""
    body = source.model_dump(
        mode="json", by_alias=True, exclude={"engine", "resume", "rerun"}, exclude_none=True
    )
    body["instructions"] = instructions
    if request.context is not None:
        body["context"] = request.context
    try:
        return InstructionRunRequest.model_validate(body)
    except ValidationError as exc:
        detail = error_details(exc.errors())
        raise RerunInvalid([{**item, "loc": ["body", *item["loc"]]} for item in detail]) from exc
