"""`POST /runs/{workflow_id}/rerun`: run a DAG run or an instruction run again as a new run,
reusing the steps that need not run again (`gateway.reruns`, `workflows.dag.rerun`;
`gateway.instruction_reruns`, `workflows.instructions.rerun`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse
from temporalio.client import WorkflowExecutionDescription
from temporalio.exceptions import WorkflowAlreadyStartedError

from gateway.deps import RunSlotsDep, RunStatusDep, SettingsDep, TemporalClientDep
from gateway.errors import InvalidRequest, RunConflict
from gateway.instruction_reruns import edited_run, other_engines_fields, read_instruction_source
from gateway.pipelines import pipeline_problems
from gateway.reruns import RerunInvalid, edited_pipeline, free_rerun_id, read_source
from gateway.runs.dag import DAG_RUNS
from gateway.runs.instructions import INSTRUCTION_RUNS
from gateway.runs.service import RunStatusService
from gateway.starts import (
    dag_engine_options,
    endpoint_problems,
    instruction_engine_options,
    start_dag_run,
    start_instruction_run,
    unprocessable,
)
from gateway.tenancy import TenantDep
from settings import Settings
from workflows.dag.graph import DagGraph
from workflows.dag.models import DagRunInput, RerunAccepted, RerunRequest
from workflows.dag.rerun import (
    UnknownStep,
    edited_steps,
    plan_rerun,
    reused_states,
    unchanged_candidates,
)
from workflows.instructions import rerun as instruction_rerun
from workflows.instructions.models import InstructionRunInput

router = APIRouter(tags=["runs"])


@router.post(
    "/runs/{workflow_id:path}/rerun",
    status_code=202,
    response_model=RerunAccepted,
    responses={
        404: {"description": "no such run"},
        409: {"description": "the source is still running, or the new id is taken by a run"},
        422: {
            "description": "the edited pipeline is invalid, names no such step, or a field"
            " is the other engine's"
        },
    },
)
async def rerun_run(
    workflow_id: str,
    client: TemporalClientDep,
    runs: RunStatusDep,
    settings: SettingsDep,
    tenant: TenantDep,
    slots: RunSlotsDep,
    request: Annotated[RerunRequest | None, Body()] = None,
) -> RerunAccepted | JSONResponse:
    """Start a new run of a finished run (with any edits) that reuses the source's completed
    steps. A DAG run: only `from_step`, the edited steps, the steps that did not complete and
    everything downstream of them run again. An instruction run: it starts at
    `from_instruction` (or the first edited instruction, or the first step that did not
    complete) with the state the source had there; the steps executed before are reused."""
    request = request or RerunRequest()
    described = await runs.describe(workflow_id, "workflow_id")
    instruction_run = described.workflow_type == INSTRUCTION_RUNS.workflow_type
    other_engines_fields(request, instruction_run)
    if instruction_run:
        return await _rerun_instructions(runs, settings, slots, workflow_id, request, described)
    source_input, source = await read_source(runs, workflow_id, described)
    try:
        steps, edited = edited_steps(source_input.STEPS_CONFIG, request.steps)
        new_id = request.workflow_id or await free_rerun_id(runs, workflow_id)
        pipeline = edited_pipeline(source_input, request, new_id, steps)
        graph = DagGraph.build(pipeline.STEPS_CONFIG)
        reused, rerun = plan_rerun(graph, source, request.from_step, edited)
    except UnknownStep as exc:
        raise InvalidRequest(str(exc)) from exc
    except RerunInvalid as exc:
        return unprocessable(exc.detail)
    taken = reused_states(source, reused, carry_items=set(rerun) - edited)
    taken.edited = unchanged_candidates(graph, source, request.from_step, rerun)
    run = DagRunInput(
        **dict(pipeline), engine=dag_engine_options(settings, tenant, pipeline), rerun=taken
    )
    problems = pipeline_problems(run)
    if problems:
        return unprocessable([problem.as_dict() for problem in problems])
    temporal_id = tenant.workflow_id(new_id)
    async with slots.starting(tenant, [temporal_id]):
        try:
            handle = await start_dag_run(
                client,
                run,
                settings,
                tenant,
                summary=f"rerun of {workflow_id}, {len(rerun)} of {len(graph.order)} steps",
                rerun_of=workflow_id,
            )
        except WorkflowAlreadyStartedError as running:
            raise RunConflict(f"run {new_id!r} is running; name another workflow_id") from running
        await runs.publish_queued(DAG_RUNS, new_id, handle.result_run_id or "", run)
    return RerunAccepted(
        workflow_id=new_id,
        run_id=handle.result_run_id,
        rerun_of=workflow_id,
        reused=reused,
        rerun=rerun,
    )


async def _rerun_instructions(
    runs: RunStatusService,
    settings: Settings,
    slots: RunSlotsDep,
    workflow_id: str,
    request: RerunRequest,
    described: WorkflowExecutionDescription,
) -> RerunAccepted | JSONResponse:
    source_input, source = await read_instruction_source(runs, workflow_id, described.status)
    try:
        instructions, edited = instruction_rerun.edited_instructions(
            source_input.instructions, request.instructions
        )
        edited_request = edited_run(source_input, request, instructions)
        planned = instruction_rerun.plan_rerun(
            edited_request.instructions, source, request.from_instruction, edited
        )
        new_id = request.workflow_id or await free_rerun_id(runs, workflow_id)
    except instruction_rerun.UnknownInstruction as exc:
        raise InvalidRequest(str(exc)) from exc
    except RerunInvalid as exc:
        return unprocessable(exc.detail)
    problems = endpoint_problems(edited_request, settings.endpoint_workers)
    if problems:
        return unprocessable(problems)
    tenant = runs.tenant
    run = InstructionRunInput(
        **dict(edited_request),
        engine=instruction_engine_options(settings, edited_request, tenant),
        rerun=instruction_rerun.reused_states(workflow_id, source, planned),
    )
    async with slots.starting(tenant, [tenant.workflow_id(new_id)]):
        try:
            handle = await start_instruction_run(
                runs.client, run, settings, tenant, new_id, rerun_of=workflow_id
            )
        except WorkflowAlreadyStartedError as running:
            raise RunConflict(f"run {new_id!r} is running; name another workflow_id") from running
        await runs.publish_queued(INSTRUCTION_RUNS, new_id, handle.result_run_id or "", run)
    return RerunAccepted(
        workflow_id=new_id,
        run_id=handle.result_run_id,
        rerun_of=workflow_id,
        reused=[str(index) for index in planned.reused],
        rerun=[str(index) for index in planned.queued],
    )
