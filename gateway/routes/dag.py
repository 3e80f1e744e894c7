"""DAG runs: `POST /execute`, `GET /runs/{workflow_id}` and the values its references name."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from gateway.deps import RunStatusDep, RunValuesDep, SettingsDep, TemporalClientDep
from gateway.errors import InvalidRequest, RunConflict, RunNotFound
from gateway.events import PING_SECONDS, RunEventStream
from gateway.runs.dag import DAG_RUNS
from gateway.runs.instructions import INSTRUCTION_RUNS, InstructionRunView
from gateway.runs.listing import LISTED_STATES, MAX_LISTED, RunSummary
from gateway.tenancy import Tenant, TenantDep, limit_running_runs
from settings import Settings
from workflows.dag.graph import validate_pipeline
from workflows.dag.models import DagRunInput, DagRunResult, EngineOptions, PipelineRequest
from workflows.dag.workflow import DagWorkflow
from workflows.shared.search import ENGINE, NAMESPACE, SEED_ID, TENANT

router = APIRouter(tags=["dag"])

JSON_CONTENT: dict[str, Any] = {"application/json": {"schema": {}}}


def engine_options(
    settings: Settings, tenant: Tenant, request: PipelineRequest | None = None
) -> EngineOptions:
    """The operator's settings, stamped on every run so it keeps the ones it started with.

    `validated`: a run is only started once `validate_pipeline` found no problem, so the
    workflow need not (and must not, on replay) decide it again. `execution_mode`: the
    pipeline's own, else the operator's EXECUTION_MODE, decided here once.
    """
    asked = request.PIPELINE_SETTINGS.execution.mode if request is not None else None
    return EngineOptions(
        execution_mode=asked or settings.execution_mode,
        validated=True,
        output_ttl_seconds=settings.output_ttl_seconds,
        webhook_attempt_timeout_seconds=settings.webhook_attempt_timeout_seconds,
        webhook_delivery_window_seconds=settings.webhook_delivery_window_seconds,
        webhook_retry_max_interval_seconds=settings.webhook_retry_max_interval_seconds,
        task_queue=settings.task_queue,
        endpoint_workers=settings.endpoint_workers,
        max_request_chars=settings.effective_step_request_max_chars,
        value_inline_max_bytes=settings.value_inline_max_bytes,
        max_steps_in_flight=settings.max_steps_in_flight,
        tenant=tenant.redis_scope,
        store_retry_window_seconds=settings.store_retry_window_seconds,
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


def search_attributes(
    engine: str, namespace: str, seed_id: str, tenant: Tenant
) -> TypedSearchAttributes:
    """How runs are found in the Web UI and with `temporal workflow list --query`."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(ENGINE, engine),
            SearchAttributePair(NAMESPACE, namespace),
            SearchAttributePair(SEED_ID, seed_id),
            SearchAttributePair(TENANT, tenant.name),
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
    tenant: TenantDep,
    wait: bool = Query(
        True,
        description="wait for the run to end, at most SYNC_WAIT_SECONDS (false, or a longer"
        " run: answer 202 at once, with the status route in Location)",
    ),
) -> DagRunResult | JSONResponse:
    """Validate a pipeline and run it; a running `workflow_id` is attached to, not restarted."""
    run = DagRunInput(**dict(request), engine=engine_options(settings, tenant, request))
    problems = validate_pipeline(run)
    if problems:
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={"detail": [problem.as_dict() for problem in problems]},
        )
    await limit_running_runs(client, tenant, settings.tenant_max_running_runs, starting=1)
    temporal_id = tenant.workflow_id(run.workflow_id)
    try:
        handle = await client.start_workflow(
            DagWorkflow.run,
            run,
            id=temporal_id,
            task_queue=settings.task_queue,
            # A running run of this id fails the start, and is attached to below: the start
            # then says for sure whether this request began the run.
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            execution_timeout=execution_timeout(
                run.PIPELINE_SETTINGS.timeouts.run_timeout, settings
            ),
            search_attributes=search_attributes("dag", run.namespace, run.workflow_id, tenant),
            static_summary=f"DAG {run.namespace}/{run.workflow_id}: {len(run.STEPS_CONFIG)} steps",
        )
    except WorkflowAlreadyStartedError as running:
        # Attached to, not restarted; what it has done stands (no queued status over it).
        handle = client.get_workflow_handle_for(DagWorkflow.run, temporal_id, run_id=running.run_id)
    else:
        await runs.publish_queued(DAG_RUNS, run.workflow_id, handle.result_run_id or "", run)
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


# Declared before `GET /runs/{workflow_id:path}`, which would take these paths for ids.
@router.get(
    "/runs/{workflow_id:path}/outputs/{name:path}",
    response_class=Response,
    responses={
        200: {"description": "the output's whole value, as JSON", "content": JSON_CONTENT},
        404: {"description": "no such run or output (yet)"},
        410: {"description": "the value has expired (OUTPUT_TTL_SECONDS)"},
    },
)
async def get_run_output(workflow_id: str, name: str, values: RunValuesDep) -> Response:
    """A step output's whole value, however large: what its `$ref` in the run's status names."""
    return await values.output(workflow_id, name)


@router.get(
    "/runs/{workflow_id:path}/steps/{step_name:path}/result",
    response_class=Response,
    responses={
        200: {"description": "the step's whole parsed response", "content": JSON_CONTENT},
        404: {"description": "no such run or step, or the step has not completed"},
        410: {"description": "the value has expired (OUTPUT_TTL_SECONDS)"},
    },
)
async def get_step_result(workflow_id: str, step_name: str, values: RunValuesDep) -> Response:
    """A finished step's whole parsed response, however large."""
    return await values.step_result(workflow_id, step_name)


@router.get(
    "/runs/{workflow_id:path}/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "the run's events as Server-Sent Events, until it ends",
            "content": {"text/event-stream": {}},
        },
        404: {"description": "no such run"},
    },
)
async def get_run_events(
    workflow_id: str,
    runs: RunStatusDep,
    after: int | None = Query(
        None, ge=0, description="send the events after this sequence (as Last-Event-ID)"
    ),
    last_event_id: str | None = Header(
        None, description="the last event id received; wins over `after` (a reconnect)"
    ),
) -> EventSourceResponse:
    """A run's live progress (DAG or instructions): every event in the webhook model, in
    order, each under its sequence as the SSE id; `end` last, once the run has ended."""
    if last_event_id is not None:
        if not last_event_id.strip().isdigit():
            raise InvalidRequest(
                f"Last-Event-ID must be an event sequence number, not {last_event_id!r}"
            )
        after = int(last_event_id)
    description = await runs.describe(workflow_id, "workflow_id")
    if description.workflow_type not in (DAG_RUNS.workflow_type, INSTRUCTION_RUNS.workflow_type):
        raise RunNotFound(f"{workflow_id!r} is not a pipeline or instruction run")
    stream = RunEventStream(runs, workflow_id, after or 0)
    return EventSourceResponse(stream.events(description), ping=PING_SECONDS)


@router.get("/runs", response_model=list[RunSummary])
async def list_runs(
    runs: RunStatusDep,
    state: str | None = Query(
        None,
        alias="status",
        description="only runs in this state: " + ", ".join(LISTED_STATES),
    ),
    limit: int = Query(50, ge=1, le=MAX_LISTED),
) -> list[RunSummary]:
    """The caller's runs, newest first (from Temporal's visibility store, which may lag a
    run's state by a moment)."""
    if state is not None and state not in LISTED_STATES:
        raise InvalidRequest(f"status must be one of {', '.join(LISTED_STATES)}, not {state!r}")
    return await runs.list(state, limit)


@router.get("/runs/{workflow_id:path}", response_model=DagRunResult | InstructionRunView)
async def get_run(workflow_id: str, runs: RunStatusDep) -> DagRunResult | InstructionRunView:
    """Any run's state (DAG or instructions): live per-step status while it runs, the result
    once it has ended."""
    return await runs.status(workflow_id)


@router.post(
    "/runs/{workflow_id:path}/cancel",
    response_model=DagRunResult | InstructionRunView,
    responses={404: {"description": "no such run"}, 409: {"description": "the run has ended"}},
)
async def cancel_run(workflow_id: str, runs: RunStatusDep) -> DagRunResult | InstructionRunView:
    """Cancel a run of either engine: running steps are cancelled, finished results are kept,
    and the status (and a DAG run's webhooks) say cancelled. Answers the status at once; the
    run reaches `cancelled` (instructions: `terminated`) moments later."""
    description = await runs.describe(workflow_id, "workflow_id")
    if description.status != WorkflowExecutionStatus.RUNNING:
        state = description.status.name.lower() if description.status else "unknown"
        raise RunConflict(f"run {workflow_id!r} has already ended ({state})")
    await runs.handle(workflow_id).cancel()
    return await runs.status(workflow_id)
