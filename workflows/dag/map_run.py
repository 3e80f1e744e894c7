"""A `map_over` step's run in its DAG run: which items run (all, or for a rerun only those
that failed in its source), where (inline or in batch workflows, `mapping.batch_plan`), and
the step's result in input order.

Bound on the DAG run's history: an inline map (at most `EngineOptions.map_inline_max_items`
items) adds a few events per item; a larger one adds a few per batch and there are at most
`MAX_MAP_BATCHES` of them, so whatever the list's length the map adds a bounded number of
events (`docs/performance.md` gives the figure measured by `bench/map_over.py`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from workflows.dag.map_batch import MapBatch, MapBatchWorkflow
    from workflows.dag.map_items import ItemOutcome, MapWork, not_run, run_items
    from workflows.dag.mapping import ItemError, MapCounts, MapOptions, batch_plan
    from workflows.dag.models import Usage


@dataclass
class MapOutcome:
    """The items' results in input order (a failed item's None), their errors by index, and
    the tokens the items billed."""

    results: list[Any]
    errors: list[ItemError] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)


def carried_indices(total: int, results: Any, failed: list[int]) -> dict[int, Any] | None:
    """The item results a rerun keeps, by index: every item but the failed ones, when the
    source's list had as many items (a list that changed runs whole); else None."""
    if not isinstance(results, list) or len(results) != total:
        return None
    again = set(failed)
    return {index: value for index, value in enumerate(results) if index not in again}


async def run_map(
    work: MapWork,
    items: list[Any],
    options: MapOptions,
    counts: MapCounts,
    *,
    concurrency: int,
    inline_max_items: int,
    kept: dict[int, Any] | None = None,
) -> MapOutcome:
    """Run every item not in `kept`, inline or by batches, and gather the step's outcome.

    Raises:
        asyncio.CancelledError: the step was cancelled (its batches are cancelled with it).
    """
    kept = kept or {}
    todo = [(index, item) for index, item in enumerate(items) if index not in kept]
    counts.total, counts.completed = len(items), len(kept)
    plan = batch_plan(len(todo), options, inline_max_items)
    if not plan.batches:
        outcomes = await run_items(work, todo, concurrency, counts)
    else:
        outcomes = await _run_batches(
            work, todo, plan.batches, plan.parallel, plan.per_batch_concurrency, counts
        )
    outcome = MapOutcome(results=[kept.get(index) for index in range(len(items))])
    for item in outcomes:
        outcome.results[item.index] = item.result
        if item.error is not None:
            outcome.errors.append(item.error)
        if item.usage is not None:
            outcome.usage = outcome.usage + item.usage
    return outcome


async def _run_batches(
    work: MapWork,
    todo: list[tuple[int, Any]],
    batches: list[range],
    parallel: int,
    concurrency: int,
    counts: MapCounts,
) -> list[ItemOutcome]:
    """Run each batch as a child `MapBatchWorkflow`, `parallel` at once; once the failures
    pass the tolerance, the batches not started are not run."""
    outcomes: list[ItemOutcome] = []
    running: dict[int, asyncio.Task[list[ItemOutcome]]] = {}
    waiting = iter(enumerate(batches))
    failures = 0
    try:
        while True:
            while failures <= work.allowed_failures and len(running) < parallel:
                nxt = next(waiting, None)
                if nxt is None:
                    break
                number, positions = nxt
                # Built without validation: a large batch's items were checked on submission,
                # and validating them again would cost the workflow task that starts it.
                batch = MapBatch.model_construct(
                    work=work,
                    items=todo[positions.start : positions.stop],
                    concurrency=concurrency,
                    done=[],
                )
                running[number] = asyncio.create_task(_run_batch(batch, number))
                counts.running += len(positions)
            if not running:
                break
            await workflow.wait(list(running.values()), return_when=asyncio.FIRST_COMPLETED)
            for number in sorted(n for n, task in running.items() if task.done()):
                ended = running.pop(number).result()
                counts.running -= len(ended)
                for item in ended:
                    if item.error is None:
                        counts.completed += 1
                    else:
                        counts.failed += 1
                        failures += 1
                outcomes += ended
    except asyncio.CancelledError:
        for number in sorted(running):
            running[number].cancel()
        raise
    for _, positions in waiting:
        for index, _ in todo[positions.start : positions.stop]:
            outcomes.append(not_run(index))
            counts.failed += 1
    return outcomes


async def _run_batch(batch: MapBatch, number: int) -> list[ItemOutcome]:
    """One batch's child run. A batch whose run failed (not an item: the batch workflow
    itself) fails each of its items with its error, so the tolerance judges them."""
    work = batch.work
    try:
        return await workflow.execute_child_workflow(
            MapBatchWorkflow.run,
            batch,
            id=f"{work.child_id_prefix}:batch-{number}",
            task_queue=work.task_queue,
            # Temporal's default task timeout, not the one-second one of a run that may run
            # local work (`workflows.shared.control`): a batch is controlled through its
            # parent, and on a busy worker one-second tasks of local items kept timing out.
            static_summary=(
                f"items {batch.items[0][0]}-{batch.items[-1][0]} of {work.step.step_name}"
            ),
        )
    except ChildWorkflowError as exc:
        task = asyncio.current_task()
        if is_cancelled_exception(exc) and task is not None and task.cancelling():
            raise asyncio.CancelledError() from exc
        message = f"batch {number} of step {work.step.step_name!r} failed: {exc.cause or exc}"
        return [
            ItemOutcome(index=index, error=ItemError(index=index, error=message))
            for index, _ in batch.items
        ]
