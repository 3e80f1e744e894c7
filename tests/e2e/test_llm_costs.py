"""LLM cost and budgets in DAG runs, through `POST /execute`: the real gateway, dev server and
workers, the real OpenAI and Anthropic SDKs against the fake LLM server."""

from __future__ import annotations

from typing import Any

import pytest

from activities.pricing.table import load_prices
from tests.conftest import Gateway, unique, wait_until
from tests.e2e.test_approvals import events_of, run_in, status_of, step_in
from tests.fakes.llm_server import FakeLLMServer

PRICES = load_prices()


def usd(model: str, input_tokens: int, output_tokens: int) -> float:
    price = PRICES.models[model]
    return (input_tokens * price.input + output_tokens * price.output) / 1e6


def llm_step(name: str, provider: str, model: str, *after: str, **llm: Any) -> dict[str, Any]:
    return {
        "step_name": name,
        "usid": f"u-{name}",
        "type": "llm",
        "dependencies": list(after),
        "llm": {"provider": provider, "model": model, "prompt": f"Answer {name}", **llm},
    }


def pipeline(steps: list[dict[str, Any]], **settings: Any) -> dict[str, Any]:
    return {
        "workflow_id": unique("cost"),
        "STEPS_CONFIG": steps,
        "PIPELINE_SETTINGS": {"error_handling": {"max_retries": 0}, **settings},
    }


async def test_cost_on_steps_and_run_follows_the_price_table_across_two_models(
    llm_gateway: Gateway, fake_llm: FakeLLMServer
):
    fake_llm.when("Answer first").reply("a", usage=(12_000, 3_000))
    fake_llm.when("Answer second").reply("b", usage=(40_000, 2_500))
    fake_llm.when("Answer third").reply("c", usage=(8_000, 1_000))
    fake_llm.when("Answer fourth").reply("d", usage=(100, 10))
    body = pipeline(
        [
            llm_step("first", "openai", "gpt-4o-mini"),
            llm_step("second", "anthropic", "claude-sonnet-4-20250514"),
            llm_step("third", "openai", "gpt-4o-mini", "first"),
            llm_step("fourth", "openai", "gpt-test"),
        ]
    )
    response = await llm_gateway.http.post("/execute", json=body)
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "completed", run["error"]

    first = usd("gpt-4o-mini", 12_000, 3_000)
    second = usd("claude-sonnet-4", 40_000, 2_500)
    third = usd("gpt-4o-mini", 8_000, 1_000)
    steps = run["steps"]
    assert round(steps["first"]["usage"]["cost_usd"], 6) == round(first, 6)
    assert steps["first"]["result"]["cost_usd"] == steps["first"]["usage"]["cost_usd"]
    assert round(steps["second"]["usage"]["cost_usd"], 6) == round(second, 6)
    assert steps["fourth"]["usage"]["cost_usd"] is None
    assert steps["fourth"]["usage"]["unpriced_models"] == ["gpt-test"]

    usage = run["usage"]
    # To the cent, and closer: 0.0036 + 0.1575 + 0.0018 USD, gpt-test not priced.
    assert round(usage["cost_usd"], 2) == round(first + second + third, 2) == 0.16
    assert usage["cost_usd"] == pytest.approx(first + second + third, abs=1e-9)
    assert usage["unpriced_models"] == ["gpt-test"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (60_100, 6_510)
    by_model = usage["by_model"]
    assert sorted(by_model) == ["claude-sonnet-4-20250514", "gpt-4o-mini", "gpt-test"]
    assert by_model["gpt-4o-mini"]["input_tokens"] == 20_000
    assert by_model["gpt-4o-mini"]["cost_usd"] == pytest.approx(first + third, abs=1e-9)
    assert by_model["gpt-test"]["cost_usd"] is None

    events = await events_of(llm_gateway, body["workflow_id"])
    [completed] = [
        e for e in events if e["event"] == "step.completed" and e["step_name"] == "first"
    ]
    assert completed["data"]["usage"]["cost_usd"] == steps["first"]["usage"]["cost_usd"]
    [finished] = [e for e in events if e["event"] == "workflow.completed"]
    assert finished["data"]["usage"]["cost_usd"] == usage["cost_usd"]

    # The run list says what each ended run cost, from the run's memo.
    async def listed() -> dict[str, Any] | None:
        runs = (await llm_gateway.http.get("/runs", params={"limit": 200})).json()
        return next((r for r in runs if r["workflow_id"] == body["workflow_id"]), None)

    summary = await wait_until(listed)
    assert summary["usage"] == {
        "input_tokens": 60_100,
        "output_tokens": 6_510,
        "cost_usd": usage["cost_usd"],
        "unpriced_models": ["gpt-test"],
    }


def spend_then_ask(on_exceed: str, **second: Any) -> dict[str, Any]:
    """`spend` bills 0.26 USD on gpt-4o; `ask` (estimated at 0.01 USD: 1,000 output tokens)
    would then cross a budget of 0.265 USD; `report` needs `ask`."""
    return pipeline(
        [
            llm_step("spend", "openai", "gpt-4o", max_tokens=1000),
            llm_step("ask", "openai", "gpt-4o", "spend", max_tokens=1000, **second),
            llm_step("report", "openai", "gpt-4o-mini", "ask", max_tokens=10),
        ],
        budget={"max_cost_usd": 0.265, "on_exceed": on_exceed},
    )


def spending(fake: FakeLLMServer) -> None:
    fake.when("Answer spend").reply("spent", usage=(100_000, 1_000))


async def test_a_budget_that_pauses_waits_before_the_crossing_call_and_goes_on_once_raised(
    llm_gateway: Gateway, fake_llm: FakeLLMServer
):
    spending(fake_llm)
    body = spend_then_ask("pause")
    workflow_id = body["workflow_id"]
    assert (await llm_gateway.http.post("/execute?wait=false", json=body)).status_code == 202
    waiting = await step_in(llm_gateway, workflow_id, "ask", "waiting")
    assert [r.last_user_message for r in fake_llm.requests] == ["Answer spend"]
    assert waiting["progress"]["waiting"] == 1
    assert waiting["budget"]["max_cost_usd"] == 0.265
    [event] = [e for e in await events_of(llm_gateway, workflow_id) if e["event"] == "step.waiting"]
    assert event["step_name"] == "ask"
    assert "past its budget of 0.265 USD" in event["data"]["message"]
    assert '"max_cost_usd"' in event["data"]["message"]

    url = f"/runs/{workflow_id}/steps/ask/approve"
    refused = await llm_gateway.http.post(url, json={"data": {"max_cost_usd": "more"}})
    assert refused.status_code == 422, refused.text
    approved = await llm_gateway.http.post(url, json={"data": {"max_cost_usd": 1.0}})
    assert approved.status_code == 200, approved.text

    done = await run_in(llm_gateway, workflow_id, "completed")
    assert done["budget"]["max_cost_usd"] == 1.0
    assert [s["status"] for s in done["steps"].values()] == ["completed"] * 3
    assert len(fake_llm.requests) == 3


async def test_a_rejected_raise_fails_the_step_with_budget_exceeded(
    llm_gateway: Gateway, fake_llm: FakeLLMServer
):
    spending(fake_llm)
    body = spend_then_ask("pause")
    workflow_id = body["workflow_id"]
    assert (await llm_gateway.http.post("/execute?wait=false", json=body)).status_code == 202
    await step_in(llm_gateway, workflow_id, "ask", "waiting")
    url = f"/runs/{workflow_id}/steps/ask/approve"
    assert (await llm_gateway.http.post(url, json={"decision": "reject"})).status_code == 200
    failed = await run_in(llm_gateway, workflow_id, "failed")
    assert failed["steps"]["ask"]["error"]["type"] == "BudgetExceeded"
    assert failed["steps"]["report"]["status"] in ("aborted", "cancelled")
    assert len(fake_llm.requests) == 1


async def test_a_raise_nobody_decides_within_wait_timeout_fails_the_step(
    llm_gateway: Gateway, fake_llm: FakeLLMServer
):
    spending(fake_llm)
    body = spend_then_ask("pause")
    body["PIPELINE_SETTINGS"]["timeouts"] = {"wait_timeout": 2}
    response = await llm_gateway.http.post("/execute", json=body)
    run = response.json()
    assert run["status"] == "failed"
    error = run["steps"]["ask"]["error"]
    assert error["type"] == "BudgetExceeded"
    assert "nobody raised it in time" in error["message"]
    assert run["steps"]["report"]["status"] in ("aborted", "cancelled")
    assert len(fake_llm.requests) == 1


async def test_a_budget_that_fails_fails_the_crossing_step_and_aborts_its_dependents(
    llm_gateway: Gateway, fake_llm: FakeLLMServer
):
    spending(fake_llm)
    body = spend_then_ask("fail")
    response = await llm_gateway.http.post("/execute", json=body)
    run = response.json()
    assert run["status"] == "failed"
    ask = run["steps"]["ask"]
    assert ask["status"] == "failed"
    assert ask["error"]["type"] == "BudgetExceeded"
    assert "past its budget of 0.265 USD" in ask["error"]["message"]
    assert run["steps"]["report"]["status"] in ("aborted", "cancelled")
    assert [r.last_user_message for r in fake_llm.requests] == ["Answer spend"]
    status = await status_of(llm_gateway, body["workflow_id"])
    assert status["usage"]["cost_usd"] == pytest.approx(usd("gpt-4o", 100_000, 1_000))


async def test_a_budget_that_downgrades_finishes_on_the_cheaper_model(
    llm_gateway: Gateway, fake_llm: FakeLLMServer
):
    spending(fake_llm)
    fallback = [
        {"provider": "anthropic", "model": "claude-opus-4"},
        {"provider": "openai", "model": "gpt-4.1-nano"},
    ]
    body = spend_then_ask("downgrade", fallback=fallback)
    # `report` names no fallback: on gpt-4o-mini with 10 tokens it fits as it is.
    response = await llm_gateway.http.post("/execute", json=body)
    run = response.json()
    assert run["status"] == "completed", run["error"]
    ask = run["steps"]["ask"]
    assert (ask["provider"], ask["model"]) == ("openai", "gpt-4.1-nano")
    assert [r.model for r in fake_llm.requests] == ["gpt-4o", "gpt-4.1-nano", "gpt-4o-mini"]
    assert sorted(run["usage"]["by_model"]) == ["gpt-4.1-nano", "gpt-4o", "gpt-4o-mini"]


async def test_an_instructions_step_gets_what_the_budget_leaves(
    llm_gateway: Gateway, fake_llm: FakeLLMServer
):
    spending(fake_llm)
    # 0.025 USD on gpt-4o, past the 0.005 USD the run's 0.265 USD budget leaves after `spend`.
    fake_llm.when("Summarise").reply("costly", usage=(10_000, 0))
    body = pipeline(
        [
            llm_step("spend", "openai", "gpt-4o", max_tokens=1000),
            {
                "step_name": "child",
                "usid": "u-child",
                "type": "instructions",
                "dependencies": ["spend"],
                "instructions": {
                    "context": "text",
                    "instructions": ["Summarise it", "Shorten it"],
                    "model": "gpt-4o",
                },
            },
        ],
        budget={"max_cost_usd": 0.265},
    )
    run = (await llm_gateway.http.post("/execute", json=body)).json()
    assert run["status"] == "failed"
    child = run["steps"]["child"]
    # The child run failed on the budget its parent left it, and the step with it.
    assert child["error"]["type"] == "InstructionFailed"
    assert "0.005 USD its parent run's budget left it" in child["error"]["message"]
    assert [r.last_user_message for r in fake_llm.requests][-1].startswith("Summarise")
