"""The price table, how model names find their rows, what calls cost and how spends add up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from activities.llm.models import TokenUsage
from activities.pricing.models import ModelPrice, ModelSpend, PriceTable
from activities.pricing.table import load_prices

SHIPPED = (
    "gpt-4o gpt-4o-mini gpt-4.1 gpt-4.1-mini gpt-4.1-nano o3 o4-mini gpt-5 gpt-5-mini gpt-5-nano"
    " claude-opus-4 claude-sonnet-4 claude-3-5-haiku claude-haiku-4-5"
).split()


def test_the_shipped_table_prices_current_openai_and_anthropic_models():
    table = load_prices()
    assert [model for model in SHIPPED if table.price_of(model) is None] == []
    assert table.price_of("gpt-4o") == ModelPrice(input=2.5, cached_input=1.25, output=10.0)


@pytest.mark.parametrize(
    ("asked", "row"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
    ],
)
def test_a_dated_snapshot_is_priced_as_its_model(asked: str, row: str):
    table = load_prices()
    assert table.price_of(asked) == table.models[row]


def test_a_model_the_table_does_not_know_has_no_cost_rather_than_a_guess():
    table = load_prices()
    # Neither a near name nor a prefix is a price: `gpt-4o-audio` is not `gpt-4o`.
    for model in ("gpt-test", "gpt-4o-audio", "llama3.2"):
        assert table.cost_usd(model, 100, 100) is None


def test_cost_is_the_table_applied_to_the_tokens():
    table = PriceTable(models={"m": ModelPrice(input=2.0, output=8.0, cached_input=0.5)})
    assert table.cost_usd("m", 1_000_000, 0) == 2.0
    assert table.cost_usd("m", 1000, 500) == pytest.approx(0.002 + 0.004)
    assert table.cost_usd("m", 1000, 0, cached_input_tokens=400) == pytest.approx(
        (600 * 2.0 + 400 * 0.5) / 1e6
    )


def test_an_override_file_is_laid_over_the_shipped_table(tmp_path: Path):
    override = tmp_path / "prices.json"
    override.write_text(
        json.dumps(
            {
                "models": {
                    "gpt-4o": {"input": 1.0, "output": 2.0},
                    "llama3.2": {"input": 0.0, "output": 0.0},
                }
            }
        )
    )
    table = load_prices(override)
    assert table.price_of("gpt-4o") == ModelPrice(input=1.0, output=2.0)
    assert table.cost_usd("llama3.2", 100, 100) == 0.0
    assert table.price_of("claude-sonnet-4") == load_prices().price_of("claude-sonnet-4")


def test_a_malformed_override_names_the_file(tmp_path: Path):
    override = tmp_path / "prices.json"
    override.write_text('{"models": {"gpt-4o": {"input": "cheap"}}}')
    with pytest.raises(ValueError, match="prices.json: not a price table"):
        load_prices(override)


def test_a_total_keeps_the_priced_part_and_names_the_unpriced_models():
    priced = TokenUsage(
        input_tokens=10,
        output_tokens=5,
        total_tokens=15,
        cost_usd=0.25,
        by_model={"gpt-4o": ModelSpend(input_tokens=10, output_tokens=5, cost_usd=0.25)},
    )
    unpriced = TokenUsage(
        input_tokens=3,
        output_tokens=1,
        total_tokens=4,
        by_model={"gpt-test": ModelSpend(input_tokens=3, output_tokens=1)},
        unpriced_models=["gpt-test"],
    )
    total = priced + unpriced + priced
    assert total.cost_usd == 0.5
    assert total.unpriced_models == ["gpt-test"]
    assert total.by_model == {
        "gpt-4o": ModelSpend(input_tokens=20, output_tokens=10, cost_usd=0.5),
        "gpt-test": ModelSpend(input_tokens=3, output_tokens=1, cost_usd=None),
    }
    assert (unpriced + unpriced).cost_usd is None
