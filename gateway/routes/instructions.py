"""Instruction runs, as the seed's workflow engine served them: `POST /`, `POST /batch` and
`GET /?instanceId=<id>`.

The bodies are typed (`InstructionRunRequest`, `InstructionBatch`) so that `/docs` shows
them; `NamedErrorsRoute` rewords FastAPI's 422 so that it names the instruction and the field
at fault (`instructions[2].method: unknown HTTP method 'FETCH' …`, and for a batch
`workflows[4].instructions[0]…`). Runs start and the answer comes at once; clients poll.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from gateway.deps import RunSlotsDep, RunStatusDep, SettingsDep
from gateway.runs.instructions import INSTRUCTION_RUNS, InstructionRunView
from gateway.runs.service import RunStatusService
from gateway.starts import (
    endpoint_problems,
    instruction_engine_options,
    start_instruction_run,
    unprocessable,
)
from settings import Settings
from workflows.instructions.models import (
    InstructionRunInput,
    InstructionRunRequest,
    InstructionRunStatus,
    error_details,
)

#: The seed's limit on one batch.
MAX_BATCH = 20

_RUN_EXAMPLE = {
    "context": "Temporal records every step of a workflow so it survives crashes.",
    "instructions": [
        "Summarise the text in one sentence.",
        {
            "instruction": "Translate the summary into French.",
            "condition": {
                "expression": "length > 20",
                "ifTrue": [2],
                "ifFalse": [],
            },
        },
        "List three keywords of the text.",
    ],
    "provider": "openai",
}
_RUN_EXAMPLES = {"run": {"summary": "A condition between LLM steps", "value": _RUN_EXAMPLE}}
_BATCH_EXAMPLES = {
    "batch": {"summary": "Two runs", "value": {"workflows": [_RUN_EXAMPLE, _RUN_EXAMPLE]}}
}


class InstructionBatch(BaseModel):
    """1 to 20 instruction runs, started concurrently.

    Sent as `{"workflows": [...]}` or, as the seed also took it, as a bare list of runs.
    """

    workflows: list[InstructionRunRequest] = Field(min_length=1, max_length=MAX_BATCH)

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, data: Any) -> Any:
        # As the seed read a batch: an object's `workflows`, else the body itself.
        return {"workflows": data.get("workflows") if isinstance(data, dict) else data}

    @field_validator("workflows", mode="before")
    @classmethod
    def _one_to_twenty(cls, value: Any) -> Any:
        # Before the runs are validated, so that a batch of the wrong size says only that.
        if not isinstance(value, list):
            raise PydanticCustomError(
                "batch_shape",
                "expected a list of 1 to {limit} instruction runs",
                {"limit": MAX_BATCH},
            )
        if not 1 <= len(value) <= MAX_BATCH:
            raise PydanticCustomError(
                "batch_size",
                "{count} runs; a batch holds 1 to {limit}",
                {"count": len(value), "limit": MAX_BATCH},
            )
        return value


def named_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI's validation errors with messages that name the instruction and field at fault.

    An error inside `workflows[i]` is worded from that run of the batch
    (`workflows[4].instructions[0].method: …`). Errors outside the body, and a body that is
    not JSON, keep FastAPI's wording.
    """
    named: list[dict[str, Any]] = []
    for error in errors:
        loc = tuple(error["loc"])
        if loc[:1] != ("body",) or error["type"] == "json_invalid":
            named.append(error)
            continue
        run = loc[1:3] if loc[1:2] == ("workflows",) and len(loc) > 2 else ()
        inner = {**error, "loc": loc[1 + len(run) :]}
        named += [{**item, "loc": ["body", *item["loc"]]} for item in error_details([inner], run)]
    return named


class NamedErrorsRoute(APIRoute):
    """A route whose 422 names the instruction and field at fault (see `named_errors`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def named_errors_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise RequestValidationError(named_errors(exc.errors()), body=exc.body) from exc

        return named_errors_handler


router = APIRouter(tags=["instructions"], route_class=NamedErrorsRoute)


class _CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)


class RunCreated(_CamelModel):
    """A started instruction run: poll `GET /?instanceId=<instanceId>`."""

    instance_id: str
    status: InstructionRunStatus


class BatchCreated(_CamelModel):
    instances: list[RunCreated]


def new_instance_id() -> str:
    return f"instr-{uuid.uuid4()}"


async def start_run(
    runs: RunStatusService, settings: Settings, request: InstructionRunRequest, instance_id: str
) -> RunCreated:
    """Start one run under its `instr-<uuid>` workflow id and answer its queued status."""
    tenant = runs.tenant
    engine = instruction_engine_options(settings, request, tenant)
    run = InstructionRunInput(**dict(request), engine=engine)
    handle = await start_instruction_run(runs.client, run, settings, tenant, instance_id)
    await runs.publish_queued(INSTRUCTION_RUNS, instance_id, handle.result_run_id or "", run)
    return RunCreated(instance_id=instance_id, status=InstructionRunStatus.for_input(run))


@router.post(
    "/",
    response_model=RunCreated,
    responses={422: {"description": "invalid payload; each item names instruction and field"}},
)
async def create_run(
    run: Annotated[InstructionRunRequest, Body(openapi_examples=_RUN_EXAMPLES)],
    runs: RunStatusDep,
    settings: SettingsDep,
    slots: RunSlotsDep,
) -> RunCreated | JSONResponse:
    """Start an instruction run (the legacy `firstInstruction`/`secondInstruction` body too)."""
    problems = endpoint_problems(run, settings.endpoint_workers)
    if problems:
        return unprocessable(problems)
    instance_id = new_instance_id()
    async with slots.starting(runs.tenant, [runs.tenant.workflow_id(instance_id)]):
        return await start_run(runs, settings, run, instance_id)


@router.post(
    "/batch",
    response_model=BatchCreated,
    responses={422: {"description": "not 1 to 20 runs, or an invalid run (named by index)"}},
)
async def create_batch(
    batch: Annotated[InstructionBatch, Body(openapi_examples=_BATCH_EXAMPLES)],
    runs: RunStatusDep,
    settings: SettingsDep,
    slots: RunSlotsDep,
) -> BatchCreated | JSONResponse:
    """Start 1 to 20 runs concurrently: `{"workflows": [...]}` or a bare list."""
    problems = [
        problem
        for position, run in enumerate(batch.workflows)
        for problem in endpoint_problems(run, settings.endpoint_workers, ("workflows", position))
    ]
    if problems:
        return unprocessable(problems)
    instance_ids = [new_instance_id() for _ in batch.workflows]
    workflow_ids = [runs.tenant.workflow_id(instance_id) for instance_id in instance_ids]
    async with slots.starting(runs.tenant, workflow_ids):
        created = await asyncio.gather(
            *(
                start_run(runs, settings, run, instance_id)
                for run, instance_id in zip(batch.workflows, instance_ids, strict=True)
            )
        )
    return BatchCreated(instances=list(created))


@router.get(
    "/",
    response_model=InstructionRunView,
    responses={404: {"description": "no instruction run with this instanceId"}},
)
async def get_instance(
    runs: RunStatusDep,
    instance_id: Annotated[str, Query(alias="instanceId", min_length=1)],
) -> InstructionRunView:
    """A run's status, live while it runs: per-step results, execution order, output, usage."""
    return await runs.instruction_status(instance_id)
