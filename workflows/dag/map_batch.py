"""`MapBatchWorkflow`: one batch of a large `map_over` step's items, a child of its DAG run.

It runs its items (`workflows.dag.map_items`) and answers their outcomes in order. Every
`ITEMS_PER_BATCH_RUN` items it continues as new, carrying the outcomes so far, so its own
history stays bounded however large the batch; outcomes and items that do not fit a
history's payloads travel through the large-payload store (`activities.store.blobs`) like
any payload of ours.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.dag.map_items import ItemOutcome, MapWork, not_run, run_items
    from workflows.dag.mapping import ITEMS_PER_BATCH_RUN, MapCounts


class MapBatch(BaseModel):
    """A batch's input: the work, the (index, item) pairs still to run, how many at once,
    and, for a run that continued as new, the outcomes its chain has so far."""

    work: MapWork
    items: list[tuple[int, Any]]
    concurrency: int
    done: list[ItemOutcome] = Field(default_factory=list)


@workflow.defn
class MapBatchWorkflow:
    def __init__(self) -> None:
        self._counts = MapCounts()

    @workflow.query
    def get_counts(self) -> MapCounts:
        """This run's items by state (the chain's earlier runs' are not counted)."""
        return self._counts

    @workflow.run
    async def run(self, batch: MapBatch) -> list[ItemOutcome]:
        now, later = batch.items[:ITEMS_PER_BATCH_RUN], batch.items[ITEMS_PER_BATCH_RUN:]
        self._counts.total = len(now)
        failures = sum(outcome.error is not None for outcome in batch.done)
        outcomes = await run_items(batch.work, now, batch.concurrency, self._counts, failures)
        done = [*batch.done, *outcomes]
        failures += sum(outcome.error is not None for outcome in outcomes)
        if later and failures <= batch.work.allowed_failures:
            workflow.continue_as_new(batch.model_copy(update={"items": later, "done": done}))
        return [*done, *(not_run(index) for index, _ in later)]
