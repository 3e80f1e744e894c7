"""`map_over`: one step run once per item of a list, and what decides its fate.

A step with `map_over` (a template that must resolve to a list) runs once per item, with
`{{item}}` and `{{item_index}}` in its templates. Its result is the list of item results in
input order, a failed item's being null; it fails when its failures pass the tolerance
(`MapOptions`), else it completes and names the failed items.

How the items are laid out over workflows (`batch_plan`): a map of at most
`EngineOptions.map_inline_max_items` items runs its items in the run itself; a larger one
runs them in child workflows (`workflows.dag.map_batch`), at most `MAX_MAP_BATCHES` of
them, so the parent's history grows with the number of batches, never with the list.

Pure: no Temporal, no I/O; validation, the workflow and the batch workflow all use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, model_validator

from kernel.errors import ErrorType
from workflows.shared.failures import StepFailed
from workflows.shared.payloads import StrictPayload
from workflows.shared.templating import TemplateError, parse_reference, placeholders, resolve

#: The variables a mapped step's templates have besides the run's: the item and its index.
ITEM_ROOTS = ("item", "item_index")
#: Child workflows a map is split into at most: each adds a handful of events to the parent's
#: history (`docs/performance.md` measures them), so this bounds what a map adds there.
MAX_MAP_BATCHES = 64
#: Items one run of a batch workflow takes before it continues as new, so each batch
#: workflow's history stays bounded too (a few events per item).
ITEMS_PER_BATCH_RUN = 1000
#: Items one batch workflow runs at once when the pipeline names no `batch_size`.
BATCH_CONCURRENCY = 10


class MapOptions(StrictPayload):
    """How a mapped step runs its items, and how many of them may fail."""

    concurrency: int = Field(
        default=10,
        ge=1,
        le=1000,
        description=(
            "Items running at once; a map run in the run itself runs at most"
            " `MAX_STEPS_IN_FLIGHT` at once, like steps."
        ),
        examples=[50],
    )
    tolerated_failure_percent: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description=(
            "The step completes while at most this percentage of its items failed; give it"
            " or `tolerated_failure_count`, not both. Neither: no item may fail."
        ),
        examples=[10],
    )
    tolerated_failure_count: int | None = Field(
        default=None,
        ge=0,
        description="The step completes while at most this many of its items failed.",
        examples=[5],
    )
    batch_size: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description=(
            "Items per child workflow when the map is too large to run in the run itself"
            f" (default {ITEMS_PER_BATCH_RUN}; raised so a map has at most {MAX_MAP_BATCHES}"
            f" batches); one batch runs per {BATCH_CONCURRENCY} of `concurrency`."
        ),
        examples=[500],
    )

    @model_validator(mode="after")
    def _one_tolerance(self) -> MapOptions:
        if self.tolerated_failure_percent is not None and self.tolerated_failure_count is not None:
            raise ValueError("give tolerated_failure_percent or tolerated_failure_count, not both")
        return self

    def allowed_failures(self, total: int) -> int:
        """How many of `total` items may fail with the step still completing."""
        if self.tolerated_failure_count is not None:
            return self.tolerated_failure_count
        if self.tolerated_failure_percent is not None:
            # A small epsilon, so 10 % of 200 is 20 and not 19 by a float's rounding.
            return math.floor(total * self.tolerated_failure_percent / 100 + 1e-9)
        return 0


class ItemError(BaseModel):
    """Why one item failed: its index in the list, the error's type and message."""

    index: int
    error: str
    type: str = ErrorType.UNKNOWN


class MapCounts(BaseModel):
    """A mapped step's items by state, live (the run page draws them)."""

    total: int = 0
    completed: int = 0
    failed: int = 0
    running: int = 0


class MapCarry(BaseModel):
    """What a rerun takes from its source's run of a mapped step: the item results (a
    `$ref` when the source stored them) and which items failed; only those run again."""

    results: Any = None
    failed_items: list[int] = Field(default_factory=list)


def resolve_items(template: str, variables: Mapping[str, Any], step_name: str) -> list[Any]:
    """The list `map_over` names.

    Raises:
        StepFailed: the template cannot be rendered, or renders to something not a list.
    """
    label = f"step {step_name!r}"
    problem = map_over_problem(template)
    if problem is not None:  # only a run started around the gateway's validation gets here
        raise StepFailed.of(ErrorType.TEMPLATE_ERROR, f"{label}: {problem}")
    [placeholder] = placeholders(template)
    try:
        # Resolved, not rendered: rendering measures the value as JSON, which for a list of
        # 100,000 items costs the workflow task most of its time.
        items = resolve(parse_reference(placeholder.expression), variables)
    except TemplateError as exc:
        raise StepFailed.of(exc.error_type, f"{label}: map_over: {exc}") from exc
    if not isinstance(items, list):
        shown = repr(items) if not isinstance(items, (dict, str)) else type(items).__name__
        raise StepFailed.of(
            ErrorType.TEMPLATE_ERROR,
            f"{label}: map_over {template} must be a list, and it is {shown}",
        )
    return items


def item_variables(variables: Mapping[str, Any], item: Any, index: int) -> dict[str, Any]:
    """The variables one item's templates render against."""
    return {**variables, "item": item, "item_index": index}


def map_over_problem(template: str) -> str | None:
    """Why `map_over` is not one `{{…}}` placeholder, or None."""
    found = list(placeholders(template))
    whole = len(found) == 1 and found[0].start == 0 and found[0].end == len(template)
    if not whole:
        return f"map_over must be a single {{{{…}}}} template naming a list, not {template!r}"
    return None


@dataclass(frozen=True)
class BatchPlan:
    """How a map's items are run: in the run itself (`batches` empty) or by batches, each a
    range of indices, with how many run at once and each one's own concurrency."""

    batches: list[range]
    parallel: int
    per_batch_concurrency: int


def batch_plan(total: int, options: MapOptions, inline_max_items: int) -> BatchPlan:
    """Lay `total` items out: inline up to `inline_max_items`, else in batches of
    `batch_size` (default `ITEMS_PER_BATCH_RUN`; raised so there are at most
    `MAX_MAP_BATCHES`), one running per `BATCH_CONCURRENCY` of `concurrency`, sharing it.

    A batch running one item at a time waits a round trip to the server between items, and
    one running every item writes every event to one history; a batch starts with its items
    in its input, which the starting workflow task encodes, so batches stay small enough
    for that task to be quick (`bench/map_over.py`)."""
    if total <= inline_max_items:
        return BatchPlan([], 0, options.concurrency)
    size = max(options.batch_size or ITEMS_PER_BATCH_RUN, math.ceil(total / MAX_MAP_BATCHES))
    batches = [range(start, min(start + size, total)) for start in range(0, total, size)]
    parallel = min(len(batches), math.ceil(options.concurrency / BATCH_CONCURRENCY))
    return BatchPlan(batches, parallel, max(1, options.concurrency // parallel))


def failed_indices(errors: Sequence[ItemError]) -> list[int]:
    return sorted(error.index for error in errors)


def tolerance_message(step_name: str, failed: int, total: int, options: MapOptions) -> str:
    """The failed step's message: how many items failed, and what was tolerated."""
    if options.tolerated_failure_count is not None:
        allowed = f"{options.tolerated_failure_count} tolerated"
    elif options.tolerated_failure_percent is not None:
        allowed = f"{options.tolerated_failure_percent:g}% tolerated"
    else:
        allowed = "none tolerated"
    return f"step {step_name!r}: {failed} of {total} items failed ({allowed})"
