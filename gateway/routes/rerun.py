"""`POST /runs/{workflow_id}/rerun`: run a DAG run again as a new run, reusing the steps that
need not run again (`gateway.reruns`, `workflows.dag.rerun`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse
from temporalio.exceptions import WorkflowAlreadyStartedError

from gateway.deps import RunSlotsDep, RunStatusDep, SettingsDep, TemporalClientDep
from gateway.errors import InvalidRequest, RunConflict
from gateway.pipelines import pipeline_problems
from gateway.reruns import RerunInvalid, edited_pipeline, free_rerun_id, read_source
from gateway.runs.dag import DAG_RUNS
from gateway.starts import dag_engine_options, start_dag_run, unprocessable
from gateway.tenancy import TenantDep
from workflows.dag.graph import DagGraph
from workflows.dag.models import DagRunInput, RerunAccepted, RerunRequest
from workflows.dag.rerun import UnknownStep, edited_steps, plan_rerun, reused_states

router = APIRouter(tags=["runs"])


@router.post(
    "/runs/{workflow_id:path}/rerun",
    status_code=202,
    response_model=RerunAccepted,
    responses={
        404: {"description": "no such DAG run"},
        409: {"description": "the source is still running, or the new id is taken by a run"},
        422: {"description": "the edited pipeline is invalid, or names no such step"},
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
    """Start a new run of a finished DAG run's pipeline (with any edits) that reuses the
    source's completed steps: only `from_step`, the edited steps, the steps that did not
    complete and everything downstream of them run again."""
    request = request or RerunRequest()
    source_input, source = await read_source(runs, workflow_id)
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
    run = DagRunInput(
        **dict(pipeline),
        engine=dag_engine_options(settings, tenant, pipeline),
        rerun=reused_states(source, reused, carry_items=set(rerun) - edited),
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
