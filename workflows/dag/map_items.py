"""The items of a `map_over` step, run in whichever workflow holds them: the DAG run itself
for a small map, a `MapBatchWorkflow` for each batch of a large one (`workflows.dag.mapping`).

Each item is the call its step type makes (`http`: `CALL_HTTP`, placed by the run's
execution mode like any step's, so a fast run makes short items as local activities; `llm`:
always a regular `CALL_LLM` activity; `instructions`: a child instruction run), with
`{{item}}` and `{{item_index}}` among its template variables. A failed item is an outcome,
not an exception: the map decides what its failures mean. `MapWork` carries every decision
the run made (timeouts, retries, placement, caching), so a batch workflow re-decides nothing.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import (
    ChildWorkflowError,
    FailureError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from activities.http.models import idempotency_key
    from activities.llm.models import CALL_LLM, LlmText
    from activities.store.models import ResultCaching
    from kernel.errors import ErrorType
    from workflows.dag.mapping import ItemError, MapCounts, item_variables
    from workflows.dag.models import StepConfig, Usage
    from workflows.dag.segment import build_call
    from workflows.dag.steps import (
        INSTRUCTION_WORKFLOW,
        build_child_run,
        build_llm_call,
        child_usage,
        llm_result,
    )
    from workflows.shared.control import workflow_task_timeout
    from workflows.shared.execution import ExecutionMode, Placement, execute_call
    from workflows.shared.failures import (
        StepFailed,
        heartbeat_timeout,
        step_failed,
        step_retry_policy,
    )

#: An item never started because the map's failures had already passed its tolerance.
NOT_RUN = "not run: the map's failures had passed its tolerance"


class MapWork(BaseModel):
    """One mapped step's items' work, as the run decided it."""

    step: StepConfig
    #: The run's variables the step's templates read.
    variables: dict[str, Any]
    upstream: list[str]
    original_input: Any = None
    input_data: dict[str, Any]
    max_request_chars: int
    timeout_seconds: float
    max_retries: int
    retry_delay: float
    placement: Placement
    task_queue: str
    tenant: str | None = None
    #: The run whose id keys each item's idempotency key; None: the pipeline sends none.
    idempotency_run: str | None = None
    cache: ResultCaching | None = None
    instruction_engine: dict[str, Any]
    execution_mode: ExecutionMode
    #: Each `instructions` item's child run id is this, a colon and its index.
    child_id_prefix: str
    #: Failures past which no further item starts.
    allowed_failures: int


class ItemOutcome(BaseModel):
    """How one item ended: its result, or its error; and the tokens it billed."""

    index: int
    result: Any = None
    error: ItemError | None = None
    usage: Usage | None = None


def not_run(index: int) -> ItemOutcome:
    return ItemOutcome(
        index=index, error=ItemError(index=index, error=NOT_RUN, type=ErrorType.CANCELLED)
    )


async def run_items(
    work: MapWork,
    items: list[tuple[int, Any]],
    concurrency: int,
    counts: MapCounts,
    failures_before: int = 0,
) -> list[ItemOutcome]:
    """Run `items` (index, item), `concurrency` at once, keeping `counts` live; once the
    failures (with `failures_before`) pass `work.allowed_failures`, the rest are not started
    and end as `not_run`. Outcomes come back in the order of `items`."""
    outcomes: dict[int, ItemOutcome] = {}
    running: dict[int, asyncio.Task[ItemOutcome]] = {}
    failures = failures_before
    waiting = iter(items)
    stopped = False
    try:
        while True:
            while not stopped and len(running) < concurrency:
                nxt = next(waiting, None)
                if nxt is None:
                    break
                running[nxt[0]] = asyncio.create_task(run_item(work, *nxt))
                counts.running += 1
            if not running:
                break
            await workflow.wait(list(running.values()), return_when=asyncio.FIRST_COMPLETED)
            for index in sorted(i for i, task in running.items() if task.done()):
                outcome = running.pop(index).result()
                outcomes[index] = outcome
                counts.running -= 1
                if outcome.error is None:
                    counts.completed += 1
                else:
                    counts.failed += 1
                    failures += 1
            stopped = failures > work.allowed_failures
    except asyncio.CancelledError:
        for index in sorted(running):
            running[index].cancel()
        raise
    for index, _ in waiting:
        outcomes[index] = not_run(index)
        counts.failed += 1
    return [outcomes[index] for index, _ in items]


async def run_item(work: MapWork, index: int, item: Any) -> ItemOutcome:
    """One item's call; its failure is its outcome.

    Raises:
        asyncio.CancelledError: the item was cancelled (the run was, or a sibling failed).
    """
    variables = item_variables(work.variables, item, index)
    usage: Usage | None = None
    try:
        if work.step.type == "llm":
            result, usage = await _ask_model(work, variables, index)
        elif work.step.type == "instructions":
            result, usage = await _run_child(work, variables, index)
        else:
            result = await _call(work, variables, index)
    except StepFailed as exc:
        failure = exc.failure
        error = ItemError(index=index, error=failure.message, type=failure.type)
        return ItemOutcome(index=index, error=error)
    return ItemOutcome(index=index, result=result, usage=usage)


def _item_name(work: MapWork, index: int) -> str:
    return f"{work.step.step_name}[{index}]"


async def _call(work: MapWork, variables: dict[str, Any], index: int) -> Any:
    step = work.step
    call = build_call(
        step,
        variables,
        upstream=work.upstream,
        original_input=work.original_input,
        input_data=work.input_data,
        max_request_chars=work.max_request_chars,
        timeout_seconds=work.timeout_seconds,
        idempotency_key=(
            idempotency_key(work.idempotency_run, _item_name(work, index))
            if work.idempotency_run is not None
            else None
        ),
        tenant=work.tenant,
        cache=work.cache,
    )
    result = await execute_call(
        call,
        placement=work.placement,
        max_attempts=work.max_retries + 1,
        retry_policy=step_retry_policy(work.max_retries, work.retry_delay),
        activity_id=f"step:{_item_name(work, index)}",
        task_queue=work.task_queue,
        summary=f"{step.method} {_item_name(work, index)}",
    )
    return result.body


async def _ask_model(work: MapWork, variables: dict[str, Any], index: int) -> tuple[Any, Usage]:
    """An `llm` item: a regular activity whatever the mode, as an `llm` step's call is."""
    call = build_llm_call(work.step, variables, max_request_chars=work.max_request_chars)
    call.tenant, call.cache = work.tenant, work.cache
    timeout = timedelta(seconds=work.timeout_seconds)
    try:
        answer = await workflow.execute_activity(
            CALL_LLM,
            call,
            result_type=LlmText,
            activity_id=f"step:{_item_name(work, index)}",
            start_to_close_timeout=timeout,
            heartbeat_timeout=heartbeat_timeout(timeout),
            retry_policy=step_retry_policy(work.max_retries, work.retry_delay),
            summary=f"llm {_item_name(work, index)}",
        )
    except FailureError as exc:
        raise step_failed(exc, work.max_retries + 1, call.label) from exc
    usage = Usage(input_tokens=answer.usage.input_tokens, output_tokens=answer.usage.output_tokens)
    return llm_result(call, answer), usage


async def _run_child(work: MapWork, variables: dict[str, Any], index: int) -> tuple[Any, Usage]:
    """An `instructions` item: a child instruction run, its final status the item's result."""
    child = build_child_run(
        work.step,
        variables,
        max_request_chars=work.max_request_chars,
        engine=work.instruction_engine,
        execution_mode=work.execution_mode,
    )
    try:
        status = await workflow.execute_child_workflow(
            INSTRUCTION_WORKFLOW,
            child,
            id=f"{work.child_id_prefix}:{index}",
            task_queue=work.task_queue,
            task_timeout=workflow_task_timeout(
                child["engine"]["execution_mode"] != "durable", len(child["instructions"])
            ),
            result_type=dict,
            static_summary=f"instructions item {_item_name(work, index)}",
        )
    except ChildWorkflowError as exc:
        task = asyncio.current_task()
        if is_cancelled_exception(exc) and task is not None and task.cancelling():
            raise asyncio.CancelledError() from exc
        cause = exc.cause
        message = cause.message if isinstance(cause, FailureError) else str(exc)
        raise StepFailed.of(
            ErrorType.INSTRUCTION_FAILED, f"item {_item_name(work, index)}: {message}"
        ) from exc
    return status, child_usage(status)
