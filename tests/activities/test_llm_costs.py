"""What LLM calls cost, counted and kept within each tenant's daily budget: the real SDKs
against the fake OpenAI/Anthropic API (one token per word), and real Redis."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis
from temporalio.exceptions import ApplicationError
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig

from activities.llm.activities import LlmActivities, build_llm_clients
from activities.llm.billing import Billing, spend_key
from activities.llm.models import ConditionVerdictRequest, LlmCall
from activities.pricing.models import ModelSpend
from activities.pricing.table import load_prices
from kernel.metrics import LLM_COST
from tests.conftest import activity_env, unique
from tests.fakes.llm_server import FakeLLMServer

PRICES = load_prices()


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeLLMServer) -> Iterator[FakeLLMServer]:
    fake_server.reset()
    yield fake_server


def llm(fake: FakeLLMServer, billing: Billing | None = None) -> LlmActivities:
    openai_client, anthropic_client = build_llm_clients(
        openai_api_key="sk-test",
        openai_base_url=fake.base_url_openai,
        anthropic_api_key="sk-ant-test",
        anthropic_base_url=fake.base_url_anthropic,
    )
    return LlmActivities(openai=openai_client, anthropic=anthropic_client, billing=billing)


def usd(model: str, input_tokens: int, output_tokens: int) -> float:
    price = PRICES.models[model]
    return (input_tokens * price.input + output_tokens * price.output) / 1e6


async def test_each_call_is_priced_by_the_model_that_answered(fake: FakeLLMServer):
    # One token per word: "three words here" in, "two words" out.
    fake.reply("two words")
    activities = llm(fake)
    answer = await activity_env().run(
        activities.call_llm,
        LlmCall(provider="openai", model="gpt-4o-mini-2024-07-18", prompt="three words here"),
    )
    tokens = (answer.usage.input_tokens, answer.usage.output_tokens)
    assert answer.usage.cost_usd == pytest.approx(usd("gpt-4o-mini", *tokens), abs=1e-12)
    assert answer.usage.by_model == {
        "gpt-4o-mini-2024-07-18": ModelSpend(
            input_tokens=tokens[0], output_tokens=tokens[1], cost_usd=answer.usage.cost_usd
        )
    }
    assert answer.usage.unpriced_models == []

    fake.when(provider="anthropic").reply_json({"verdict": True, "reason": "yes"}, usage=(40, 10))
    verdict = await activity_env().run(
        activities.judge_condition,
        ConditionVerdictRequest(
            provider="anthropic", model="claude-haiku-4-5", expression="x", result_text="y"
        ),
    )
    assert verdict.usage.cost_usd == pytest.approx(usd("claude-haiku-4-5", 40, 10), abs=1e-12)


async def test_an_unpriced_model_costs_null_and_warns_once(
    fake: FakeLLMServer, caplog: pytest.LogCaptureFixture
):
    fake.reply("a", times=3)
    activities = llm(fake)
    call = LlmCall(provider="openai", model="gpt-unlisted", prompt="hi")
    with caplog.at_level(logging.WARNING, logger="activities.llm.billing"):
        answers = [await activity_env().run(activities.call_llm, call) for _ in range(3)]
    assert {answer.usage.cost_usd for answer in answers} == {None}
    assert answers[0].usage.unpriced_models == ["gpt-unlisted"]
    warnings = [r for r in caplog.records if "gpt-unlisted" in r.getMessage()]
    assert len(warnings) == 1
    assert "has no price" in warnings[0].getMessage()


async def test_the_cost_counter_counts_by_tenant_provider_and_model(fake: FakeLLMServer):
    buffer = MetricBuffer(1000)
    env = activity_env()
    env.metric_meter = Runtime(telemetry=TelemetryConfig(metrics=buffer)).metric_meter
    fake.reply("one two", usage=(1000, 500))
    call = LlmCall(provider="openai", model="gpt-4.1", prompt="x", tenant="acme")
    await env.run(llm(fake).call_llm, call)
    counted = [
        (dict(update.attributes), update.value)
        for update in buffer.retrieve_updates()
        if update.metric.name == LLM_COST
    ]
    labels = {"tenant": "acme", "provider": "openai", "model": "gpt-4.1"}
    assert [(attrs, value) for attrs, value in counted if attrs.items() >= labels.items()] == [
        ({**counted[0][0], **labels}, round(usd("gpt-4.1", 1000, 500) * 1e9))
    ]


async def test_a_tenant_past_its_daily_budget_gets_the_named_error(
    fake: FakeLLMServer, redis: Redis
):
    tenant = unique("tenant")
    # gpt-4o: 1M input tokens cost 2.50 USD; the budget is 3 USD a day.
    billing = Billing(PRICES, tenant_budgets={tenant: 3.0}, redis=redis)
    activities = llm(fake, billing)
    fake.reply("ok", usage=(1_000_000, 0), times=3)
    call = LlmCall(provider="openai", model="gpt-4o", prompt="big", tenant=tenant, label="s")
    await activity_env().run(activities.call_llm, call)
    key = spend_key(tenant, datetime.now(UTC).date().isoformat())
    assert float(await redis.get(key) or 0) == pytest.approx(2.5)
    # Admitted on what was spent before it (2.50 < 3): this call takes the tenant past.
    await activity_env().run(activities.call_llm, call)
    assert float(await redis.get(key) or 0) == pytest.approx(5.0)
    assert 0 < await redis.ttl(key) <= 2 * 24 * 3600

    with pytest.raises(ApplicationError) as refused:
        await activity_env().run(activities.call_llm, call)
    assert refused.value.type == "TenantBudgetExceeded"
    assert refused.value.non_retryable
    assert tenant in refused.value.message and "3 USD" in refused.value.message
    assert len(fake.requests) == 2  # the refused call asked no model

    # Another tenant, and one without a budget, still call.
    other = call.model_copy(update={"tenant": unique("other")})
    await activity_env().run(activities.call_llm, other)
