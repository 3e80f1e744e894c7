"""DAG runs: `POST /execute` and `GET /runs/{workflow_id}`."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from gateway.deps import RunStatusDep, SettingsDep, TemporalClientDep
from gateway.runs import DAG_RUNS, InstructionRunView
from settings import Settings
from workflows.dag.graph import validate_pipeline
from workflows.dag.models import DagRunInput, DagRunResult, EngineOptions, PipelineRequest
from workflows.dag.workflow import DagWorkflow

router = APIRouter(tags=["dag"])

ENGINE = SearchAttributeKey.for_keyword("WorkflowStationEngine")
NAMESPACE = SearchAttributeKey.for_keyword("WorkflowStationNamespace")
SEED_ID = SearchAttributeKey.for_keyword("WorkflowStationId")


def engine_options(settings: Settings) -> EngineOptions:
    """The operator's settings, stamped on every run so it keeps the ones it started with.

    `validated`: a run is only started once `validate_pipeline` found no problem, so the
    workflow need not (and must not, on replay) decide it again.
    """
    return EngineOptions(
        validated=True,
        output_ttl_seconds=settings.output_ttl_seconds,
        webhook_attempt_timeout_seconds=settings.webhook_attempt_timeout_seconds,
        webhook_delivery_window_seconds=settings.webhook_delivery_window_seconds,
        webhook_retry_max_interval_seconds=settings.webhook_retry_max_interval_seconds,
        task_queue=settings.task_queue,
        endpoint_workers=settings.endpoint_workers,
        max_request_chars=settings.step_request_max_chars,
    )


def execution_timeout(run_timeout: float | None, settings: Settings) -> timedelta | None:
    """Temporal's own deadline for a run: its run timeout plus a grace period.

    The workflow ends itself at its run timeout with its partial results; this backstop ends
    a run that cannot (one whose workflow task fails on every retry), so no run and no waiting
    client hangs for ever.
    """
    if run_timeout is None:
        return None
    return timedelta(seconds=run_timeout + settings.run_timeout_grace_seconds)


def search_attributes(engine: str, namespace: str, seed_id: str) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(ENGINE, engine),
            SearchAttributePair(NAMESPACE, namespace),
            SearchAttributePair(SEED_ID, seed_id),
        ]
    )


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
    wait: bool = Query(
        True,
        description="wait for the run to end, at most SYNC_WAIT_SECONDS (false, or a longer"
        " run: answer 202 at once, with the status route in Location)",
    ),
) -> DagRunResult | JSONResponse:
    """Validate a pipeline and run it; a running `workflow_id` is attached to, not restarted."""
    run = DagRunInput(**dict(request), engine=engine_options(settings))
    problems = validate_pipeline(run)
    if problems:
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={"detail": [problem.as_dict() for problem in problems]},
        )
    handle = await client.start_workflow(
        DagWorkflow.run,
        run,
        id=run.workflow_id,
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        execution_timeout=execution_timeout(run.PIPELINE_SETTINGS.timeouts.run_timeout, settings),
        search_attributes=search_attributes("dag", run.namespace, run.workflow_id),
        static_summary=f"DAG {run.namespace}/{run.workflow_id}: {len(run.STEPS_CONFIG)} steps",
    )
    if wait:
        # Bounded: a long run answers 202 like `wait=false`, never a request that hangs.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settings.sync_wait_seconds):
                return await runs.with_webhooks(await runs.result(DAG_RUNS, handle))
    accepted = DagRunResult(
        workflow_id=run.workflow_id, run_id=handle.result_run_id, namespace=run.namespace
    )
    return JSONResponse(
        status_code=202,
        content=accepted.model_dump(mode="json"),
        headers={"Location": f"/runs/{run.workflow_id}"},
    )


@router.get("/runs/{workflow_id:path}", response_model=DagRunResult | InstructionRunView)
async def get_run(workflow_id: str, runs: RunStatusDep) -> DagRunResult | InstructionRunView:
    """Any run's state (DAG or instructions): live per-step status while it runs, the result
    once it has ended."""
    return await runs.status(workflow_id)
