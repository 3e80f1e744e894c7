"""A run's LLM budget (`PIPELINE_SETTINGS.budget`): what a call is estimated to cost, whether
it would cross the budget, and what then. Pure, no Temporal.

Before an `llm` step's call is dispatched, the workflow estimates it: prompt tokens as its
characters / 4, output tokens as its `max_tokens` (else the worker's `LLM_MAX_TOKENS`), priced
with the table the gateway stamped on the run (`EngineOptions.prices`). The call is within
the budget when what the run has spent, plus the estimates of its calls still in flight, plus
this estimate stays within `max_cost_usd` and `max_tokens`. Otherwise `on_exceed` decides:
`fail` fails the step with `BudgetExceeded`; `pause` makes the step wait, as an approval step
waits, for a person to raise the budget (`data: {"max_cost_usd": ...}`) or reject
(`BudgetExceeded`); `downgrade` sends the call to the model of the step's `llm.fallback`
chain that would cost least, if that one fits.

Overshoot: since calls in flight are counted at their estimate, a run overshoots its budget
only by what its calls bill beyond their estimates: prompt tokens beyond characters / 4 (the
output cannot pass `max_tokens`). Calls to a model without a price count their tokens, not a
cost; an `instructions` step's child run gets what the budget leaves when it starts (its
token budget and `cost_budget_usd`) and checks it before and after each of its calls, so a
child overshoots by at most its last call, and children running side by side each get the
same remainder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from activities.llm.models import LlmCall, ModelRef
from activities.pricing.models import PriceTable
from kernel.errors import ErrorType
from workflows.shared.payloads import StrictPayload

if TYPE_CHECKING:
    from workflows.dag.models import Usage

#: Characters per token, for estimating a prompt before it is sent: English text averages
#: about four with both providers' tokenisers.
CHARS_PER_TOKEN = 4

OnExceed = Literal["fail", "pause", "downgrade"]

#: What a person sends to raise a paused run's budget.
RAISE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "max_cost_usd": {"type": "number", "exclusiveMinimum": 0},
        "max_tokens": {"type": "integer", "minimum": 1},
    },
    "minProperties": 1,
    "additionalProperties": False,
}


class Budget(StrictPayload):
    """`PIPELINE_SETTINGS.budget`: what the run's LLM calls may spend in all."""

    max_cost_usd: float | None = Field(
        default=None,
        gt=0,
        description="USD the run's LLM calls may cost (priced with the worker's price table).",
        examples=[0.5],
    )
    max_tokens: int | None = Field(
        default=None, ge=1, description="Tokens (input and output) the run's LLM calls may spend."
    )
    on_exceed: OnExceed = Field(
        default="fail",
        description=(
            "What a call that would cross the budget does: `fail` (the step fails"
            " `BudgetExceeded`), `pause` (the step waits for an approval that raises the"
            ' budget: `data: {"max_cost_usd": ...}`), or `downgrade` (the cheapest model of'
            " the step's `llm.fallback`)."
        ),
    )

    @model_validator(mode="after")
    def _some_limit(self) -> Budget:
        if self.max_cost_usd is None and self.max_tokens is None:
            raise ValueError("give `max_cost_usd`, `max_tokens` or both")
        return self


@dataclass(frozen=True)
class Estimate:
    """What a call may spend, before it is sent."""

    tokens: int
    #: None: its model has no price.
    cost_usd: float | None

    def __add__(self, other: Estimate) -> Estimate:
        cost = None
        if self.cost_usd is not None or other.cost_usd is not None:
            cost = (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return Estimate(self.tokens + other.tokens, cost)


NOTHING = Estimate(0, None)


def prompt_tokens(call: LlmCall) -> int:
    """The prompt's tokens, estimated from its characters."""
    parts = [call.system or "", call.prompt, *(m.content for m in call.messages or [])]
    return math.ceil(sum(len(part) for part in parts) / CHARS_PER_TOKEN)


def estimate(call: LlmCall, prices: PriceTable, default_max_tokens: int) -> Estimate:
    """The most `call` may spend: its estimated prompt and all of its `max_tokens`."""
    input_tokens = prompt_tokens(call)
    output_tokens = call.max_tokens or default_max_tokens
    return Estimate(
        input_tokens + output_tokens, prices.cost_usd(call.model, input_tokens, output_tokens)
    )


def overrun(budget: Budget, spent: Estimate, call: Estimate) -> str | None:
    """Why `call` would cross `budget` after `spent` (spent and in flight), or None."""
    if budget.max_cost_usd is not None and call.cost_usd is not None:
        total = (spent.cost_usd or 0.0) + call.cost_usd
        if total > budget.max_cost_usd:
            return (
                f"the run's LLM calls have spent or hold {spent.cost_usd or 0.0:.6f} USD and this"
                f" call may cost {call.cost_usd:.6f} USD, past its budget of"
                f" {budget.max_cost_usd:g} USD"
            )
    if budget.max_tokens is not None and spent.tokens + call.tokens > budget.max_tokens:
        return (
            f"the run's LLM calls have spent or hold {spent.tokens} tokens and this call may"
            f" spend {call.tokens}, past its budget of {budget.max_tokens} tokens"
        )
    return None


def cheapest(
    call: LlmCall, chain: Sequence[ModelRef], prices: PriceTable, default_max_tokens: int
) -> ModelRef | None:
    """The model of the call's own and its `chain` whose call would cost least; None when
    none of them has a price."""
    candidates = [ModelRef(provider=call.provider, model=call.model), *chain]
    index = prices.cheapest(
        [c.model for c in candidates],
        input_tokens=prompt_tokens(call),
        output_tokens=call.max_tokens or default_max_tokens,
    )
    return candidates[index] if index is not None else None


def child_engine(
    options: dict[str, Any], budget: Budget, spent: Usage, held: Estimate
) -> dict[str, Any]:
    """An `instructions` step's child run options, limited to what the run's budget leaves:
    its token budget (`TokenBudgetExceeded` past it) and its cost (`BudgetExceeded`)."""
    limited = dict(options)
    if budget.max_tokens is not None:
        used = spent.input_tokens + spent.output_tokens + held.tokens
        left = max(0, budget.max_tokens - used)
        own = options.get("token_budget")
        limited["token_budget"] = left if own is None else min(own, left)
    if budget.max_cost_usd is not None:
        used_usd = (spent.cost_usd or 0.0) + (held.cost_usd or 0.0)
        limited["cost_budget_usd"] = max(0.0, budget.max_cost_usd - used_usd)
    return limited


def raised(budget: Budget, data: Any) -> Budget:
    """The budget a person's approval sets (`data` follows `RAISE_SCHEMA`)."""
    return Budget.model_validate({**budget.model_dump(), **data})


def raise_refusal(data: Any) -> tuple[ErrorType, str] | None:
    """Why an approval cannot raise the budget (the update's validator), or None."""
    if not isinstance(data, dict) or not data:
        return ErrorType.INVALID_APPROVAL_DATA, (
            'approve with data {"max_cost_usd": <USD>} (or "max_tokens") to raise the budget'
        )
    unknown = sorted(set(data) - {"max_cost_usd", "max_tokens"})
    if unknown:
        return ErrorType.INVALID_APPROVAL_DATA, f"data/{unknown[0]}: not a budget limit"
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            return ErrorType.INVALID_APPROVAL_DATA, f"data/{key}: must be a number above 0"
    return None
