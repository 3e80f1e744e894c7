"""A run's LLM budget, pure: estimates, crossings, the cheapest model, raises, child runs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from activities.llm.models import LlmCall, LlmMessage, ModelRef
from activities.pricing.table import load_prices
from gateway.starts import dag_engine_options
from gateway.tenancy import Tenant
from settings import Settings
from workflows.dag.budget import (
    NOTHING,
    Budget,
    Estimate,
    cheapest,
    child_engine,
    estimate,
    overrun,
    raise_refusal,
    raised,
)
from workflows.dag.models import PipelineRequest, Usage

PRICES = load_prices()


def test_a_call_is_estimated_at_its_prompt_by_four_characters_and_all_its_max_tokens():
    call = LlmCall(provider="openai", model="gpt-4o", system="x" * 7, prompt="y" * 10)
    guess = estimate(call, PRICES, default_max_tokens=4096)
    assert guess.tokens == 5 + 4096  # ceil(17 / 4) + the worker's default
    assert guess.cost_usd == pytest.approx((5 * 2.5 + 4096 * 10) / 1e6)
    conversation = LlmCall(
        provider="openai",
        model="unknown",
        messages=[LlmMessage(role="user", content="z" * 8)],
        max_tokens=10,
    )
    assert estimate(conversation, PRICES, 4096) == Estimate(12, None)


def test_a_call_crosses_when_spent_held_and_estimated_pass_a_limit():
    budget = Budget(max_cost_usd=1.0, max_tokens=1000)
    assert overrun(budget, Estimate(100, 0.5), Estimate(100, 0.5)) is None
    assert "past its budget of 1 USD" in (overrun(budget, Estimate(0, 0.6), Estimate(1, 0.5)) or "")
    assert "past its budget of 1000 tokens" in (
        overrun(budget, Estimate(900, 0.0), Estimate(101, None)) or ""
    )
    # A model without a price counts its tokens only.
    assert overrun(Budget(max_cost_usd=0.01), NOTHING, Estimate(10**6, None)) is None


def test_a_budget_needs_a_limit():
    with pytest.raises(ValidationError, match="max_cost_usd"):
        Budget(on_exceed="pause")


def test_the_cheapest_model_of_the_chain_for_the_call_at_hand():
    call = LlmCall(provider="openai", model="gpt-4o", prompt="p", max_tokens=100)
    chain = [
        ModelRef(provider="anthropic", model="claude-haiku-4-5"),
        ModelRef(provider="openai", model="gpt-4.1-nano"),
        ModelRef(provider="openai", model="not-priced"),
    ]
    assert cheapest(call, chain, PRICES, 4096) == chain[1]
    assert cheapest(call, [], PRICES, 4096) == ModelRef(provider="openai", model="gpt-4o")
    unpriced = call.model_copy(update={"model": "x"})
    assert cheapest(unpriced, chain[2:], PRICES, 4096) is None


def test_an_approval_raises_the_budget_with_limits_only():
    budget = Budget(max_cost_usd=0.5, on_exceed="pause")
    assert raise_refusal({"max_cost_usd": 2}) is None
    assert raised(budget, {"max_cost_usd": 2}) == Budget(max_cost_usd=2, on_exceed="pause")
    for data in (None, {}, {"max_cost_usd": -1}, {"max_cost_usd": True}, {"more": 1}):
        refused = raise_refusal(data)
        assert refused is not None and refused[0] == "InvalidApprovalData"


def test_a_child_run_gets_what_the_budget_leaves():
    options = {"token_budget": 200_000, "step_budget": 5}
    budget = Budget(max_tokens=1000)
    spent = Usage(input_tokens=300, output_tokens=100, cost_usd=0.25)
    held = Estimate(100, 0.05)
    assert child_engine(options, budget, spent, held) == {"token_budget": 500, "step_budget": 5}
    assert child_engine(options, Budget(max_cost_usd=1), spent, held) == {
        **options,
        "cost_budget_usd": pytest.approx(0.7),
    }
    assert child_engine(options, budget, Usage(input_tokens=5000), NOTHING)["token_budget"] == 0


def test_the_gateway_stamps_prices_on_budgeted_runs_and_the_tenant_on_their_children():
    chain = [ModelRef(provider="openai", model="gpt-4.1-nano")]
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, llm_max_tokens=1234, llm_fallback_chain=chain
    )
    steps = [{"step_name": "a", "usid": "a", "service_url": "https://example.com"}]
    plain = PipelineRequest.model_validate({"workflow_id": "w", "STEPS_CONFIG": steps})
    budgeted = PipelineRequest.model_validate(
        {
            "workflow_id": "w",
            "STEPS_CONFIG": steps,
            "PIPELINE_SETTINGS": {"budget": {"max_cost_usd": 1}},
        }
    )
    acme = Tenant("acme")
    assert dag_engine_options(settings, acme, plain).prices == {}
    assert dag_engine_options(settings, acme, plain).llm_fallback_chain == []
    stamped = dag_engine_options(settings, acme, budgeted)
    assert stamped.prices == PRICES.models
    assert stamped.llm_max_tokens == 1234
    # A downgrade picks from the operator's chain for steps that name none of their own.
    assert stamped.llm_fallback_chain == chain
    assert stamped.instruction_engine["tenant"] == "acme"
