"""What the gateway decides when it starts a run, for every route that starts one (and
`POST /validate`, which checks as they do): the operator's options stamped on the run,
Temporal's deadline for it, the search attributes it is found by, and the checks only the
operator's configuration can make.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import status
from fastapi.responses import JSONResponse
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from activities.pricing.models import PriceTable
from activities.pricing.table import load_prices
from gateway.tenancy import Tenant
from kernel.search import ENGINE, NAMESPACE, RERUN_OF, SEED_ID, TENANT
from settings import Settings
from workflows.dag.models import DagRunInput, DagRunResult, EngineOptions, PipelineRequest
from workflows.dag.placement import may_run_local
from workflows.dag.workflow import DagWorkflow
from workflows.instructions.models import (
    ApprovalInstruction,
    EndpointInstruction,
    EndpointSpec,
    InstructionEngineOptions,
    InstructionRunInput,
    InstructionRunRequest,
    InstructionRunStatus,
    RouterInstruction,
)
from workflows.instructions.workflow import InstructionWorkflow
from workflows.shared.approvals import wait_seconds
from workflows.shared.control import CONTROL_MAX_STEPS, workflow_task_timeout
from workflows.shared.endpoints import MAX_MS, UnknownEndpoint, resolve_endpoint


def dag_engine_options(
    settings: Settings, tenant: Tenant, request: PipelineRequest | None = None
) -> EngineOptions:
    """The operator's settings, stamped on every DAG run so it keeps the ones it started with.

    `validated`: a run is only started once `validate_pipeline` found no problem, so the
    workflow need not (and must not, on replay) decide it again. `execution_mode`: the
    pipeline's own, else the operator's EXECUTION_MODE, decided here once.
    """
    asked = request.PIPELINE_SETTINGS.execution.mode if request is not None else None
    budgeted = request is not None and request.PIPELINE_SETTINGS.budget is not None
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
        map_inline_max_items=settings.map_inline_max_items,
        # The tenant too: its child runs' LLM calls count against its daily budget.
        instruction_engine=instruction_engine_options(settings, tenant=tenant).model_dump(
            mode="json"
        ),
        prices=price_table(settings.llm_prices_file).models if budgeted else {},
        llm_max_tokens=settings.llm_max_tokens,
        llm_fallback_chain=settings.llm_fallback_chain if budgeted else [],
    )


@functools.cache
def price_table(path: Path | None) -> PriceTable:
    """The prices a budgeted run estimates its calls with, read once per file."""
    return load_prices(path)


def instruction_engine_options(
    settings: Settings,
    request: InstructionRunRequest | None = None,
    tenant: Tenant | None = None,
) -> InstructionEngineOptions:
    """The operator's limits, stamped on every instruction run so it keeps the ones it started
    with; the execution mode is the request's `executionMode`, else EXECUTION_MODE."""
    asked = request.execution_mode if request is not None else None
    return InstructionEngineOptions(
        execution_mode=asked or settings.execution_mode,
        llm_step_timeout_seconds=settings.llm_step_timeout_seconds,
        llm_condition_timeout_seconds=settings.llm_condition_timeout_seconds,
        llm_max_retries=settings.llm_max_retries,
        llm_retry_initial_seconds=settings.llm_retry_initial_seconds,
        token_budget=settings.llm_token_budget_per_run,
        step_budget=settings.instruction_step_budget,
        endpoint_workers=settings.endpoint_workers,
        max_request_chars=settings.effective_step_request_max_chars,
        run_timeout_seconds=settings.instruction_run_timeout_seconds,
        tenant=tenant.redis_scope if tenant is not None else None,
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


def dag_execution_timeout(run: PipelineRequest, settings: Settings) -> timedelta | None:
    """`execution_timeout` for a pipeline: its run timeout, plus the longest its approval
    steps may wait (their waits do not count towards the run's own deadline)."""
    timeouts = run.PIPELINE_SETTINGS.timeouts
    if timeouts.run_timeout is None:
        return None
    waits = sum(
        wait_seconds(step.approval, timeouts.wait_timeout)
        for step in run.STEPS_CONFIG
        if step.type == "approval" and step.approval is not None
    )
    return execution_timeout(timeouts.run_timeout + waits, settings)


def search_attributes(
    engine: str, namespace: str, seed_id: str, tenant: Tenant, rerun_of: str | None = None
) -> TypedSearchAttributes:
    """How runs are found in the Web UI and with `temporal workflow list --query`
    (`kernel.search`); a rerun also by its source (`rerun_of`)."""
    pairs: list[SearchAttributePair[str]] = [
        SearchAttributePair(ENGINE, engine),
        SearchAttributePair(NAMESPACE, namespace),
        SearchAttributePair(SEED_ID, seed_id),
        SearchAttributePair(TENANT, tenant.name),
    ]
    if rerun_of is not None:
        pairs.append(SearchAttributePair(RERUN_OF, rerun_of))
    return TypedSearchAttributes(pairs)


def endpoint_problems(
    run: InstructionRunRequest, workers: Sequence[str], prefix: tuple[str | int, ...] = ()
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


def control_steps(run: DagRunInput) -> int:
    """What the run schedules, as `workflow_task_timeout` weighs it: its steps, and for a
    run with a `map_over` step as many as a pipeline too large for one-second tasks (its
    items may be thousands, received and scheduled by one task)."""
    mapped = any(step.map_over is not None for step in run.STEPS_CONFIG)
    return len(run.STEPS_CONFIG) + (CONTROL_MAX_STEPS if mapped else 0)


def dag_task_timeout(run: DagRunInput) -> timedelta | None:
    """The run's workflow task timeout, however it starts (`/execute`, a rerun, a schedule);
    None for Temporal's default."""
    return workflow_task_timeout(may_run_local(run), control_steps(run))


async def start_dag_run(
    client: Client,
    run: DagRunInput,
    settings: Settings,
    tenant: Tenant,
    *,
    summary: str,
    rerun_of: str | None = None,
) -> WorkflowHandle[DagWorkflow, DagRunResult]:
    """Start a validated pipeline run as the tenant's, however it came (`/execute`, a rerun):
    one set of start options for both. A running run of the id fails the start
    (`WorkflowAlreadyStartedError`), so the caller knows for sure whether it began the run."""
    return await client.start_workflow(
        DagWorkflow.run,
        run,
        id=tenant.workflow_id(run.workflow_id),
        task_queue=settings.task_queue,
        task_timeout=dag_task_timeout(run),
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        execution_timeout=dag_execution_timeout(run, settings),
        search_attributes=search_attributes(
            "dag", run.namespace, run.workflow_id, tenant, rerun_of=rerun_of
        ),
        static_summary=f"DAG {run.namespace}/{run.workflow_id}: {summary}",
    )


async def start_instruction_run(
    client: Client,
    run: InstructionRunInput,
    settings: Settings,
    tenant: Tenant,
    instance_id: str,
    *,
    rerun_of: str | None = None,
) -> WorkflowHandle[InstructionWorkflow, InstructionRunStatus]:
    """Start an instruction run as the tenant's, however it came (`POST /`, a rerun). Temporal's
    deadline adds the longest its approval steps may wait (their waits do not count towards
    the run's own deadline)."""
    run_timeout = run.engine.run_timeout_seconds
    waits = sum(
        wait_seconds(instruction, run.engine.wait_timeout_seconds)
        for instruction in run.instructions
        if isinstance(instruction, ApprovalInstruction)
    )
    return await client.start_workflow(
        InstructionWorkflow.run,
        run,
        id=tenant.workflow_id(instance_id),
        task_queue=settings.task_queue,
        task_timeout=workflow_task_timeout(
            run.engine.execution_mode != "durable", len(run.instructions)
        ),
        execution_timeout=execution_timeout(
            run_timeout + waits if run_timeout is not None else None, settings
        ),
        search_attributes=search_attributes(
            "instructions", "default", instance_id, tenant, rerun_of=rerun_of
        ),
        static_summary=(
            f"Instructions: {len(run.instructions)} steps on {run.provider}/{run.effective_model}"
            + (f", rerun of {rerun_of}" if rerun_of is not None else "")
        ),
    )
