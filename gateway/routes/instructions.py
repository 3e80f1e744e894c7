"""Instruction runs, as the seed's workflow engine served them: `POST /`, `POST /batch` and
`GET /?instanceId=<id>`.

The body is validated here rather than by FastAPI so that a 422 names the instruction and the
field at fault (`instructions[2].method: unknown HTTP method 'FETCH' …`, and for a batch
`workflows[4].instructions[0]…`). Runs start and the answer comes at once; clients poll.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel
from temporalio.client import Client

from gateway.deps import RunStatusDep, SettingsDep, TemporalClientDep
from gateway.routes.dag import search_attributes
from gateway.runs import InstructionRunView
from settings import Settings
from workflows.instructions.models import (
    EndpointInstruction,
    EndpointSpec,
    InstructionEngineOptions,
    InstructionRunInput,
    InstructionRunRequest,
    InstructionRunStatus,
    RouterInstruction,
    error_details,
)
from workflows.instructions.workflow import InstructionWorkflow
from workflows.shared.endpoints import MAX_MS, UnknownEndpoint, resolve_endpoint

router = APIRouter(tags=["instructions"])

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
_RUN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "title": "InstructionRunRequest"},
                "example": _RUN_EXAMPLE,
            }
        },
    }
}
_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "title": "InstructionBatch"},
                "example": {"workflows": [_RUN_EXAMPLE, _RUN_EXAMPLE]},
            }
        },
    }
}


class _CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)


class RunCreated(_CamelModel):
    """A started instruction run: poll `GET /?instanceId=<instanceId>`."""

    instance_id: str
    status: InstructionRunStatus


class BatchCreated(_CamelModel):
    instances: list[RunCreated]


def engine_options(settings: Settings) -> InstructionEngineOptions:
    """The operator's limits, stamped on every run so it keeps the ones it started with."""
    return InstructionEngineOptions(
        llm_step_timeout_seconds=settings.llm_step_timeout_seconds,
        llm_condition_timeout_seconds=settings.llm_condition_timeout_seconds,
        llm_max_retries=settings.llm_max_retries,
        llm_retry_initial_seconds=settings.llm_retry_initial_seconds,
        step_budget=settings.instruction_step_budget,
        endpoint_workers=settings.endpoint_workers,
    )


def parse_run(
    payload: Any, workers: Sequence[str], prefix: tuple[str | int, ...] = ()
) -> tuple[InstructionRunRequest | None, list[dict[str, Any]]]:
    """The validated run, or the problems as 422 `detail` items naming index and field."""
    try:
        run = InstructionRunRequest.model_validate(payload)
    except ValidationError as exc:
        return None, [
            {**item, "loc": ["body", *item["loc"]]} for item in error_details(exc, prefix)
        ]
    problems = endpoint_problems(run, workers, prefix)
    return (None, problems) if problems else (run, [])


def endpoint_problems(
    run: InstructionRunRequest, workers: Sequence[str], prefix: tuple[str | int, ...]
) -> list[dict[str, Any]]:
    """`endpointUrl`s that name no configured endpoint worker and are no URL either, and
    calls an external proxy cannot take (its format caps `timeout` and `retryDelay`)."""
    specs: list[tuple[tuple[str | int, ...], EndpointSpec]] = []
    for index, instruction in enumerate(run.instructions):
        if isinstance(instruction, EndpointInstruction):
            specs.append((("instructions", index), instruction))
        elif isinstance(instruction, RouterInstruction):
            for position, option in enumerate(instruction.options):
                specs.append(
                    (("instructions", index, "options", position, "endpoint"), option.endpoint)
                )
    problems = []
    for loc, spec in specs:
        where = ".".join(str(part) for part in (*prefix, *loc))
        try:
            route = resolve_endpoint(spec.endpoint_url, workers)
        except UnknownEndpoint as exc:
            problems.append(
                {
                    "loc": ["body", *prefix, *loc, "endpointUrl"],
                    "msg": f"{where}.endpointUrl: {exc}",
                    "type": "unknown_endpoint",
                }
            )
            continue
        if route.proxy_url is None:
            continue
        for field, value in (("timeout", spec.timeout), ("retryDelay", spec.retry_delay)):
            if value > MAX_MS:
                problems.append(
                    {
                        "loc": ["body", *prefix, *loc, field],
                        "msg": f"{where}.{field}: {value} ms is more than an external endpoint"
                        f" proxy accepts ({MAX_MS} ms)",
                        "type": "proxy_limit",
                    }
                )
    return problems


def unprocessable(detail: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail}
    )


async def start_run(
    client: Client, settings: Settings, request: InstructionRunRequest
) -> RunCreated:
    """Start one run under a fresh `instr-<uuid>` workflow id and answer its queued status."""
    run = InstructionRunInput(**dict(request), engine=engine_options(settings))
    instance_id = f"instr-{uuid.uuid4()}"
    await client.start_workflow(
        InstructionWorkflow.run,
        run,
        id=instance_id,
        task_queue=settings.task_queue,
        search_attributes=search_attributes("instructions", "default", instance_id),
        static_summary=(
            f"Instructions: {len(run.instructions)} steps on {run.provider}/{run.effective_model}"
        ),
    )
    return RunCreated(instance_id=instance_id, status=InstructionRunStatus.for_input(run))


@router.post(
    "/",
    response_model=RunCreated,
    responses={422: {"description": "invalid payload; each item names instruction and field"}},
    openapi_extra=_RUN_BODY,
)
async def create_run(
    payload: Annotated[Any, Body()], client: TemporalClientDep, settings: SettingsDep
) -> RunCreated | JSONResponse:
    """Start an instruction run (the legacy `firstInstruction`/`secondInstruction` body too)."""
    run, problems = parse_run(payload, settings.endpoint_workers)
    if run is None:
        return unprocessable(problems)
    return await start_run(client, settings, run)


@router.post(
    "/batch",
    response_model=BatchCreated,
    responses={422: {"description": "not 1 to 20 runs, or an invalid run (named by index)"}},
    openapi_extra=_BATCH_BODY,
)
async def create_batch(
    payload: Annotated[Any, Body()], client: TemporalClientDep, settings: SettingsDep
) -> BatchCreated | JSONResponse:
    """Start 1 to 20 runs concurrently: `{"workflows": [...]}` or a bare list."""
    items = payload.get("workflows") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        return unprocessable(
            [
                {
                    "loc": ["body", "workflows"],
                    "msg": f"workflows: expected a list of 1 to {MAX_BATCH} instruction runs",
                    "type": "batch_shape",
                }
            ]
        )
    if not 1 <= len(items) <= MAX_BATCH:
        return unprocessable(
            [
                {
                    "loc": ["body", "workflows"],
                    "msg": f"workflows: {len(items)} runs; a batch holds 1 to {MAX_BATCH}",
                    "type": "batch_size",
                }
            ]
        )
    runs: list[InstructionRunRequest] = []
    problems: list[dict[str, Any]] = []
    for position, item in enumerate(items):
        run, found = parse_run(item, settings.endpoint_workers, ("workflows", position))
        problems.extend(found)
        if run is not None:
            runs.append(run)
    if problems:
        return unprocessable(problems)
    created = await asyncio.gather(*(start_run(client, settings, run) for run in runs))
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
