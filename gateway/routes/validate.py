"""`POST /validate`: check either payload without running it, and say how it would run.

The same checks as starting the run (`POST /execute`, `POST /`), with the same 422 body; a
valid payload answers its plan (`workflows.shared.plans.Plan`). The engine is told by the
payload's shape (`STEPS_CONFIG`: a DAG pipeline, `instructions`: an instruction run), or by
`?engine=`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from gateway.deps import SettingsDep
from gateway.errors import InvalidRequest, validation_detail
from gateway.pipelines import pipeline_problems
from gateway.starts import dag_engine_options, endpoint_problems, unprocessable
from gateway.tenancy import TenantDep
from workflows.dag.models import DagRunInput, PipelineRequest
from workflows.dag.plan import plan_pipeline
from workflows.instructions.models import InstructionRunRequest, error_details
from workflows.shared.plans import Engine, Plan, PlannedStep, engine_of

router = APIRouter(tags=["validate"])

#: What a payload of neither shape is told.
NOT_A_PIPELINE = (
    "not a pipeline: a DAG pipeline has STEPS_CONFIG, an instruction run has instructions"
    " (or say which with ?engine=dag|instructions)"
)


def _with_body(detail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**item, "loc": ["body", *item["loc"]]} for item in detail]


def plan_instructions(run: InstructionRunRequest) -> Plan:
    """An instruction run's plan: its queue, one step a level, each after the one before."""
    names = [str(index) for index in range(len(run.instructions))]
    steps = [
        PlannedStep(name=name, type=instruction.type, dependencies=names[:index][-1:])
        for index, (name, instruction) in enumerate(zip(names, run.instructions, strict=True))
    ]
    return Plan(engine="instructions", levels=[[name] for name in names], steps=steps)


@router.post(
    "/validate",
    response_model=Plan,
    responses={422: {"description": "every problem in the payload, as `POST /execute` says"}},
)
async def validate(
    settings: SettingsDep,
    tenant: TenantDep,
    payload: Annotated[Any, Body(description="A DAG pipeline or an instruction run.")],
    engine: Annotated[
        Engine | None, Query(description="The payload's engine; unset: told by its shape.")
    ] = None,
) -> Plan | JSONResponse:
    """Check a DAG pipeline or an instruction run without running it: its plan, or every
    problem (422)."""
    engine = engine or engine_of(payload)
    if engine is None:
        raise InvalidRequest(NOT_A_PIPELINE)
    if engine == "instructions":
        try:
            run = InstructionRunRequest.model_validate(payload)
        except ValidationError as exc:
            return unprocessable(_with_body(error_details(exc.errors())))
        problems = endpoint_problems(run, settings.endpoint_workers)
        return unprocessable(problems) if problems else plan_instructions(run)
    try:
        pipeline = PipelineRequest.model_validate(payload)
    except ValidationError as exc:
        errors = [{**error, "loc": ["body", *error["loc"]]} for error in exc.errors()]
        return unprocessable(validation_detail(errors, PipelineRequest))
    run_input = DagRunInput(**dict(pipeline), engine=dag_engine_options(settings, tenant, pipeline))
    graph_problems = pipeline_problems(run_input)
    if graph_problems:
        return unprocessable([problem.as_dict() for problem in graph_problems])
    return plan_pipeline(pipeline)
