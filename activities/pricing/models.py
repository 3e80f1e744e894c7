"""What LLM tokens cost and what calls spent: the price table's model, how a model's name
finds its row, a call's cost, and spends by model that add up. Pure, no I/O.

Each call is priced in the activity (`activities.llm.billing`), so its cost is recorded in
the history with the answer and a replay adds up the same numbers. A model the table does
not know has no price: its calls' `cost_usd` is None, never a guess, and a total holds the
cost of the part it knows and names the models it could not price (`unpriced_models`).
Workflows import this module to estimate a call against a budget (`workflows.dag.budget`).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

#: A dated snapshot's suffix: OpenAI's `-2024-08-06`, Anthropic's `-20250514`, or `-latest`.
_SNAPSHOT_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


class ModelPrice(BaseModel):
    """One model's prices, in USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    #: Input tokens read from the provider's prompt cache; unset: the input price.
    cached_input: float | None = Field(default=None, ge=0)


class PriceTable(BaseModel):
    """Prices by model name, as `prices.json` and `LLM_PRICES_FILE` hold them."""

    models: dict[str, ModelPrice] = Field(default_factory=dict)

    def price_of(self, model: str) -> ModelPrice | None:
        """The row for `model`, or for the model a dated snapshot of it names
        (`gpt-4o-2024-08-06` is `gpt-4o`); None when the table has neither."""
        for name in (model, _SNAPSHOT_SUFFIX.sub("", model)):
            price = self.models.get(name)
            if price is not None:
                return price
        return None

    def cheapest(self, models: list[str], *, input_tokens: int, output_tokens: int) -> int | None:
        """The index in `models` of the one whose call of that size costs least (the first of
        equals); None when none of them has a price."""
        costs = [
            (cost, index)
            for index, model in enumerate(models)
            if (cost := self.cost_usd(model, input_tokens, output_tokens)) is not None
        ]
        return min(costs)[1] if costs else None

    def cost_usd(
        self, model: str, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0
    ) -> float | None:
        """What a call billed, in USD; None for a model without a price."""
        price = self.price_of(model)
        if price is None:
            return None
        cached_price = price.input if price.cached_input is None else price.cached_input
        micro_usd = (
            (input_tokens - cached_input_tokens) * price.input
            + cached_input_tokens * cached_price
            + output_tokens * price.output
        )
        # Per-million prices times token counts: rounding drops float noise, not cents.
        return round(micro_usd / 1_000_000, 10)


class ModelSpend(BaseModel):
    """What one model's calls spent."""

    input_tokens: int = 0
    output_tokens: int = 0
    #: None: the model has no price.
    cost_usd: float | None = None

    def __add__(self, other: ModelSpend) -> ModelSpend:
        return ModelSpend(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=add_costs(self.cost_usd, other.cost_usd),
        )


def add_costs(first: float | None, second: float | None) -> float | None:
    """The sum of two costs, None only when neither is known."""
    if first is None or second is None:
        return second if first is None else first
    return round(first + second, 10)


def add_by_model(
    first: dict[str, ModelSpend], second: dict[str, ModelSpend]
) -> dict[str, ModelSpend]:
    """Two spends by model, added model by model, in name order."""
    return {
        model: first.get(model, ModelSpend()) + second.get(model, ModelSpend())
        for model in sorted(first.keys() | second.keys())
    }


def add_unpriced(first: list[str], second: list[str]) -> list[str]:
    return sorted(set(first) | set(second))
