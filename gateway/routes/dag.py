"""DAG pipelines: `POST /execute` (the seed's contract). Runs are read, followed and
cancelled through the engine-neutral `/runs` routes (`gateway.routes.runs`)."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse
from temporalio.exceptions import WorkflowAlreadyStartedError

from gateway.deps import RunSlotsDep, RunStatusDep, SettingsDep, TemporalClientDep
from gateway.pipelines import pipeline_problems
from gateway.runs.dag import DAG_RUNS
from gateway.starts import dag_engine_options, start_dag_run
from gateway.tenancy import TenantDep
from workflows.dag.models import DagRunInput, DagRunResult, PipelineRequest
from workflows.dag.workflow import DagWorkflow

router = APIRouter(tags=["dag"])


@router.post(
    "/execute",
    response_model=DagRunResult,
    responses={202: {"model": DagRunResult}, 422: {"description": "invalid pipeline"}},
)
async def execute(
    request: PipelineRequest,
    client: TemporalClientDep,
    runs: RunStatusDep,
    settings: SettingsDep,
    tenant: TenantDep,
    slots: RunSlotsDep,
    wait: bool = Query(
        True,
        description="wait for the run to end, at most SYNC_WAIT_SECONDS (false, or a longer"
        " run: answer 202 at once, with the status route in Location)",
    ),
) -> DagRunResult | JSONResponse:
    """Validate a pipeline and run it; a running `workflow_id` is attached to, not restarted."""
    run = DagRunInput(**dict(request), engine=dag_engine_options(settings, tenant, request))
    problems = pipeline_problems(run)
    if problems:
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={"detail": [problem.as_dict() for problem in problems]},
        )
    temporal_id = tenant.workflow_id(run.workflow_id)
    async with slots.starting(tenant, [temporal_id]):
        try:
            handle = await start_dag_run(
                client, run, settings, tenant, summary=f"{len(run.STEPS_CONFIG)} steps"
            )
        except WorkflowAlreadyStartedError as running:
            # Attached to, not restarted; what it has done stands (no queued status over it).
            handle = client.get_workflow_handle_for(
                DagWorkflow.run, temporal_id, run_id=running.run_id
            )
        else:
            await runs.publish_queued(DAG_RUNS, run.workflow_id, handle.result_run_id or "", run)
    if wait:
        # Bounded: a long run answers 202 like `wait=false`, never a request that hangs.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settings.sync_wait_seconds):
                result = await runs.result(DAG_RUNS, handle)
                await slots.release(tenant, [temporal_id])
                return await runs.with_webhooks(result)
    accepted = DagRunResult(
        workflow_id=run.workflow_id, run_id=handle.result_run_id, namespace=run.namespace
    )
    return JSONResponse(
        status_code=202,
        content=accepted.model_dump(mode="json"),
        headers={"Location": f"/runs/{run.workflow_id}"},
    )
