"""The LLM activities against the real OpenAI and Anthropic SDKs talking to a local fake API."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Literal

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig

from activities.llm.activities import LlmActivities, build_llm_clients
from activities.llm.models import (
    ConditionVerdictRequest,
    LlmCall,
    LlmMessage,
    RouteOptionBrief,
    RouteRequest,
    TokenUsage,
)
from kernel.metrics import LLM_TOKENS
from tests.conftest import activity_env
from tests.fakes.llm_server import FakeLLMServer

OPENAI_KEY = "sk-test-openai"
ANTHROPIC_KEY = "sk-ant-test"

Flavour = Literal["chat", "responses", "anthropic"]
FLAVOURS: list[Flavour] = ["chat", "responses", "anthropic"]


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeLLMServer) -> Iterator[FakeLLMServer]:
    fake_server.reset()
    yield fake_server
    fake_server.expected_api_key = None


def make_activities(
    fake: FakeLLMServer, openai_api: Literal["chat", "responses"] = "chat", **kwargs: Any
) -> LlmActivities:
    openai_client, anthropic_client = build_llm_clients(
        openai_api_key=OPENAI_KEY,
        openai_base_url=fake.base_url_openai,
        anthropic_api_key=ANTHROPIC_KEY,
        anthropic_base_url=fake.base_url_anthropic,
        **kwargs,
    )
    return LlmActivities(openai=openai_client, anthropic=anthropic_client, openai_api=openai_api)


def activities_for(fake: FakeLLMServer, flavour: Flavour, **kwargs: Any) -> LlmActivities:
    return make_activities(fake, "responses" if flavour == "responses" else "chat", **kwargs)


def provider_of(flavour: Flavour) -> Literal["openai", "anthropic"]:
    return "anthropic" if flavour == "anthropic" else "openai"


def tokens_of(usage: TokenUsage) -> TokenUsage:
    """The token counts alone (`tests/activities/test_llm_costs.py` checks the cost)."""
    return TokenUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
    )


async def run(activity_fn: Any, arg: Any, *, attempt: int = 1) -> Any:
    env = activity_env()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    return await env.run(activity_fn, arg)


async def run_failing(activity_fn: Any, arg: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await run(activity_fn, arg)
    return caught.value


# call_llm


async def test_openai_chat_returns_text_usage_and_sends_messages(fake: FakeLLMServer) -> None:
    acts = make_activities(fake, "chat")
    fake.reply("Paris is the capital.", usage=(12, 5))

    result = await run(
        acts.call_llm,
        LlmCall(provider="openai", model="gpt-4o-mini", system="Be brief.", prompt="Capital?"),
        attempt=3,
    )

    assert result.text == "Paris is the capital."
    assert tokens_of(result.usage) == TokenUsage(input_tokens=12, output_tokens=5, total_tokens=17)
    assert result.model == "gpt-4o-mini"
    assert result.attempt == 3
    [sent] = fake.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.json["model"] == "gpt-4o-mini"
    assert sent.json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital?"},
    ]
    assert "response_format" not in sent.json
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"


async def test_openai_responses_api_returns_text_and_usage(fake: FakeLLMServer) -> None:
    acts = make_activities(fake, "responses")
    fake.reply("from the responses API", usage=(7, 4))

    result = await run(
        acts.call_llm,
        LlmCall(provider="openai", model="gpt-5", system="Sys.", prompt="Hi", max_tokens=50),
    )

    assert result.text == "from the responses API"
    assert tokens_of(result.usage) == TokenUsage(input_tokens=7, output_tokens=4, total_tokens=11)
    assert result.model == "gpt-5"
    [sent] = fake.requests
    assert sent.path == "/v1/responses"
    assert sent.json["instructions"] == "Sys."
    assert sent.json["input"] == "Hi"
    assert sent.json["max_output_tokens"] == 50
    assert sent.json["store"] is False


async def test_anthropic_messages_returns_text_and_usage(fake: FakeLLMServer) -> None:
    acts = make_activities(fake)
    fake.reply("Bonjour", usage=(20, 3))

    result = await run(
        acts.call_llm,
        LlmCall(provider="anthropic", model="claude-test", system="French.", prompt="Hi"),
    )

    assert result.text == "Bonjour"
    assert tokens_of(result.usage) == TokenUsage(input_tokens=20, output_tokens=3, total_tokens=23)
    assert result.model == "claude-test"
    [sent] = fake.requests
    assert sent.path == "/v1/messages"
    assert sent.json["system"] == "French."
    assert sent.json["messages"] == [{"role": "user", "content": "Hi"}]
    assert sent.json["max_tokens"] == 4096
    assert "tools" not in sent.json
    # This SDK version sends the key as a bearer token; older ones used x-api-key.
    assert sent.api_key == ANTHROPIC_KEY


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_default_reply_echoes_model_and_prompt(fake: FakeLLMServer, flavour: Flavour) -> None:
    acts = activities_for(fake, flavour)

    result = await run(
        acts.call_llm, LlmCall(provider=provider_of(flavour), model="m1", prompt="x y")
    )

    assert result.text == "m1: x y"
    assert result.usage.input_tokens == 2
    assert result.usage.output_tokens == 3
    assert result.usage.total_tokens == 5
    assert fake.last_request.system is None


async def test_prompt_rules_answer_by_content_so_chains_can_be_told_apart(
    fake: FakeLLMServer,
) -> None:
    acts = make_activities(fake)
    fake.when("outline").reply("1. intro 2. body")
    fake.when("expand", provider="anthropic").respond(lambda req: req.last_user_message.upper())

    outline = await run(acts.call_llm, LlmCall(provider="openai", model="m", prompt="outline it"))
    expanded = await run(
        acts.call_llm,
        LlmCall(provider="anthropic", model="c", prompt=f"expand: {outline.text}"),
    )

    assert outline.text == "1. intro 2. body"
    assert expanded.text == "EXPAND: 1. INTRO 2. BODY"
    assert [r.last_user_message for r in fake.requests] == [
        "outline it",
        "expand: 1. intro 2. body",
    ]


# Failures


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("status", [429, 500, 503, 529])
async def test_overload_and_server_errors_are_retryable(
    fake: FakeLLMServer, flavour: Flavour, status: int
) -> None:
    acts = activities_for(fake, flavour)
    fake.fail(status)

    error = await run_failing(
        acts.call_llm,
        LlmCall(provider=provider_of(flavour), model="m", prompt="p", label="step 'draft'"),
    )

    assert error.type == "LlmProviderError"
    assert error.non_retryable is False
    assert error.details[0]["status"] == status
    assert error.message.startswith("step 'draft': ")
    assert str(status) in error.message
    # max_retries=0: the SDK made one request and left retrying to Temporal.
    assert len(fake.requests) == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("status", [400, 401, 404])
async def test_client_errors_are_not_retryable(
    fake: FakeLLMServer, flavour: Flavour, status: int
) -> None:
    acts = activities_for(fake, flavour)
    fake.fail(status, message="model: unknown-model is not a model")

    error = await run_failing(
        acts.call_llm, LlmCall(provider=provider_of(flavour), model="m", prompt="p")
    )

    assert error.type == "LlmRequestRejected"
    assert error.non_retryable is True
    assert "model: unknown-model is not a model" in error.message
    assert len(fake.requests) == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_a_refusal_is_not_retried(fake: FakeLLMServer, flavour: Flavour) -> None:
    acts = activities_for(fake, flavour)
    fake.refuse("I won't write that.")

    error = await run_failing(
        acts.call_llm,
        LlmCall(provider=provider_of(flavour), model="m", prompt="p", label="instruction 2"),
    )

    assert error.type == "LlmRequestRejected"
    assert error.non_retryable is True
    assert error.message.startswith("instruction 2: the model refused")
    assert len(fake.requests) == 1


async def test_wrong_api_key_is_rejected_without_leaking_the_key(fake: FakeLLMServer) -> None:
    fake.expected_api_key = "the-right-key"
    acts = make_activities(fake)

    error = await run_failing(acts.call_llm, LlmCall(provider="openai", model="m", prompt="p"))

    assert error.type == "LlmRequestRejected"
    assert error.non_retryable is True
    assert "401" in error.message
    assert OPENAI_KEY not in error.message
    assert fake.last_request.api_key == OPENAI_KEY


@pytest.mark.parametrize(
    ("flavour", "status"), [("chat", 429), ("responses", 503), ("anthropic", 529)]
)
async def test_retry_after_becomes_next_retry_delay(
    fake: FakeLLMServer, flavour: Flavour, status: int
) -> None:
    acts = activities_for(fake, flavour)
    fake.fail(status, retry_after=7)

    error = await run_failing(
        acts.call_llm, LlmCall(provider=provider_of(flavour), model="m", prompt="p")
    )

    assert error.non_retryable is False
    assert error.next_retry_delay == timedelta(seconds=7)


async def test_no_retry_after_leaves_backoff_to_the_retry_policy(fake: FakeLLMServer) -> None:
    acts = make_activities(fake)
    fake.fail(429)

    error = await run_failing(acts.call_llm, LlmCall(provider="anthropic", model="m", prompt="p"))

    assert error.next_retry_delay is None


async def test_scripted_failures_then_success_is_what_a_retry_sees(fake: FakeLLMServer) -> None:
    acts = make_activities(fake)
    fake.fail(429, times=2)
    fake.reply("finally")
    call = LlmCall(provider="openai", model="m", prompt="p")

    for _ in range(2):
        assert (await run_failing(acts.call_llm, call)).type == "LlmProviderError"
    result = await run(acts.call_llm, call, attempt=3)

    assert (result.text, result.attempt) == ("finally", 3)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_unreachable_provider_is_retryable(provider: Literal["openai", "anthropic"]) -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    openai_client, anthropic_client = build_llm_clients(
        openai_api_key="k",
        openai_base_url=f"{url}/v1",
        anthropic_api_key="k",
        anthropic_base_url=url,
    )
    acts = LlmActivities(openai=openai_client, anthropic=anthropic_client)

    error = await run_failing(acts.call_llm, LlmCall(provider=provider, model="m", prompt="p"))

    assert error.type == "LlmProviderError"
    assert error.non_retryable is False
    assert "could not be reached" in error.message


@pytest.mark.parametrize("flavour", ["chat", "anthropic"])
async def test_slow_provider_times_out_as_retryable(fake: FakeLLMServer, flavour: Flavour) -> None:
    acts = activities_for(fake, flavour, request_timeout_seconds=0.3)
    fake.reply("too late", delay=2)

    error = await run_failing(
        acts.call_llm, LlmCall(provider=provider_of(flavour), model="m", prompt="p")
    )

    assert error.type == "LlmProviderError"
    assert error.non_retryable is False
    assert "timed out" in error.message


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_long_call_is_cancellable(fake: FakeLLMServer, flavour: Flavour) -> None:
    acts = activities_for(fake, flavour)
    fake.reply("never seen", delay=30)
    env = activity_env()
    call = LlmCall(provider=provider_of(flavour), model="m", prompt="p")
    task = asyncio.create_task(env.run(acts.call_llm, call))
    await fake.wait_for_requests(1)

    env.cancel()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)


# Configuration


@pytest.mark.parametrize(
    ("provider", "key_var", "url_var"),
    [
        ("openai", "OPENAI_API_KEY", "OPENAI_BASE_URL"),
        ("anthropic", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
    ],
)
async def test_unconfigured_provider_names_the_env_vars(
    provider: Literal["openai", "anthropic"], key_var: str, url_var: str
) -> None:
    openai_client, anthropic_client = build_llm_clients(
        openai_api_key=None, openai_base_url=None, anthropic_api_key=None, anthropic_base_url=None
    )
    assert (openai_client, anthropic_client) == (None, None)
    acts = LlmActivities(openai=openai_client, anthropic=anthropic_client)

    error = await run_failing(
        acts.call_llm, LlmCall(provider=provider, model="m", prompt="p", label="step 'a'")
    )

    assert error.type == "ProviderNotConfigured"
    assert error.non_retryable is True
    assert key_var in error.message
    assert url_var in error.message
    assert error.message.startswith("step 'a': ")


async def test_base_url_without_key_uses_a_placeholder_key(fake: FakeLLMServer) -> None:
    openai_client, anthropic_client = build_llm_clients(
        openai_api_key=None,
        openai_base_url=fake.base_url_openai,
        anthropic_api_key="",
        anthropic_base_url=fake.base_url_anthropic,
    )
    assert openai_client is not None and anthropic_client is not None
    assert openai_client.max_retries == 0 and anthropic_client.max_retries == 0
    acts = LlmActivities(openai=openai_client, anthropic=anthropic_client)

    await run(acts.call_llm, LlmCall(provider="openai", model="llama3", prompt="p"))
    await run(acts.call_llm, LlmCall(provider="anthropic", model="c", prompt="p"))

    assert [r.api_key for r in fake.requests] == ["not-needed", "not-needed"]


# judge_condition


def verdict_request(flavour: Flavour, expression: str = "the total exceeds 100") -> Any:
    return ConditionVerdictRequest(
        provider=provider_of(flavour),
        model="judge-model",
        expression=expression,
        result_text="Total: 250 EUR",
    )


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("verdict", [True, False])
async def test_judge_condition_uses_structured_output(
    fake: FakeLLMServer, flavour: Flavour, verdict: bool
) -> None:
    acts = activities_for(fake, flavour)
    fake.reply_json({"verdict": verdict, "reason": "250 vs 100"}, usage=(30, 8))

    result = await run(acts.judge_condition, verdict_request(flavour), attempt=2)

    assert result.verdict is verdict
    assert result.reason == "250 vs 100"
    assert result.parsed_with == "structured"
    assert tokens_of(result.usage) == TokenUsage(input_tokens=30, output_tokens=8, total_tokens=38)
    assert result.attempt == 2
    sent = fake.last_request
    assert sent.model == "judge-model"
    assert sent.json_schema is not None
    assert sent.json_schema["properties"]["verdict"] == {
        "type": "boolean",
        "description": "true if the condition holds",
    }
    assert "the total exceeds 100" in sent.last_user_message
    assert "Total: 250 EUR" in sent.last_user_message
    assert sent.system is not None and "true or false" in sent.system


async def test_judge_condition_structured_request_shapes(fake: FakeLLMServer) -> None:
    for flavour in FLAVOURS:
        await run(activities_for(fake, flavour).judge_condition, verdict_request(flavour))
    chat, responses, messages = fake.requests

    assert chat.json["response_format"]["type"] == "json_schema"
    assert chat.json["response_format"]["json_schema"]["strict"] is True
    assert responses.json["text"]["format"]["type"] == "json_schema"
    assert responses.json["text"]["format"]["name"] == "condition_verdict"
    assert messages.json["tool_choice"] == {"type": "tool", "name": "condition_verdict"}


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ("Yes, because 250 is more than 100.", True),
        ("No. The total is below the limit.", False),
        ('```json\n{"verdict": "true"}\n```', True),
        ("The answer is: false", False),
    ],
)
async def test_judge_condition_falls_back_to_free_text(
    fake: FakeLLMServer, flavour: Flavour, answer: str, verdict: bool
) -> None:
    acts = activities_for(fake, flavour)
    fake.reply(answer)

    result = await run(acts.judge_condition, verdict_request(flavour))

    assert result.verdict is verdict
    assert result.parsed_with == "fallback"
    assert result.reason == answer


async def test_judge_condition_reads_fenced_json_as_structured(fake: FakeLLMServer) -> None:
    acts = make_activities(fake)
    fake.reply('```json\n{"verdict": false, "reason": "too small"}\n```')

    result = await run(acts.judge_condition, verdict_request("chat"))

    assert (result.verdict, result.reason, result.parsed_with) == (False, "too small", "structured")


async def test_judge_condition_unreadable_answer_is_retryable(fake: FakeLLMServer) -> None:
    acts = make_activities(fake)
    fake.reply("It depends on the currency.")

    error = await run_failing(acts.judge_condition, verdict_request("chat"))

    assert error.type == "LlmUnparseableAnswer"
    assert error.non_retryable is False
    assert "It depends on the currency." in error.message


# choose_route


def route_request(flavour: Flavour) -> RouteRequest:
    return RouteRequest(
        provider=provider_of(flavour),
        model="router-model",
        description="Triage a support ticket.",
        evaluation_prompt="Which team should handle it?",
        previous_result="I was charged twice this month.",
        options=[
            RouteOptionBrief(id="billing", name="Billing", description="Payments and invoices"),
            RouteOptionBrief(id="tech", name="Technical", description="Bugs and outages"),
        ],
    )


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_choose_route_picks_an_option_by_structured_output(
    fake: FakeLLMServer, flavour: Flavour
) -> None:
    acts = activities_for(fake, flavour)
    fake.reply_json({"option_id": "billing", "reason": "double charge"})

    choice = await run(acts.choose_route, route_request(flavour))

    assert (choice.option_id, choice.valid, choice.parsed_with) == ("billing", True, "structured")
    assert choice.reason == "double charge"
    assert choice.usage.total_tokens > 0
    sent = fake.last_request
    assert sent.json_schema is not None
    assert sent.json_schema["properties"]["option_id"]["enum"] == ["billing", "tech"]
    for text in ("Triage a support ticket.", "charged twice", "id: tech", "Bugs and outages"):
        assert text in sent.last_user_message


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_choose_route_answer_that_is_not_an_option_is_invalid(
    fake: FakeLLMServer, flavour: Flavour
) -> None:
    acts = activities_for(fake, flavour)
    fake.reply_json({"option_id": "sales", "reason": "?"})

    choice = await run(acts.choose_route, route_request(flavour))

    assert choice.valid is False
    assert choice.option_id is None
    assert "sales" in choice.raw


@pytest.mark.parametrize(
    ("answer", "option_id"),
    [("tech", "tech"), ("`Billing`.", "billing"), ("I would send this to billing.", "billing")],
)
async def test_choose_route_reads_free_text_answers(
    fake: FakeLLMServer, answer: str, option_id: str
) -> None:
    acts = make_activities(fake)
    fake.reply(answer)

    choice = await run(acts.choose_route, route_request("chat"))

    assert (choice.option_id, choice.valid, choice.parsed_with) == (option_id, True, "fallback")
    assert choice.raw == answer


async def test_choose_route_free_text_naming_no_single_option_is_invalid(
    fake: FakeLLMServer,
) -> None:
    acts = make_activities(fake)
    fake.reply("Either billing or tech could take it.")

    choice = await run(acts.choose_route, route_request("anthropic"))

    assert (choice.option_id, choice.valid) == (None, False)
    assert choice.raw == "Either billing or tech could take it."


async def test_choose_route_default_fake_answer_is_the_first_option(fake: FakeLLMServer) -> None:
    choice = await run(make_activities(fake).choose_route, route_request("anthropic"))

    assert (choice.option_id, choice.valid) == ("billing", True)


def test_usage_adds_up() -> None:
    a = TokenUsage(input_tokens=1, output_tokens=2, total_tokens=3)
    b = TokenUsage(input_tokens=10, output_tokens=20, total_tokens=30)

    assert a + b == TokenUsage(input_tokens=11, output_tokens=22, total_tokens=33)


async def test_fake_server_as_async_context_manager_checks_the_key() -> None:
    async with FakeLLMServer(expected_api_key=OPENAI_KEY) as server:
        acts = make_activities(server)
        ok = await run(acts.call_llm, LlmCall(provider="openai", model="m", prompt="p"))
        error = await run_failing(
            acts.call_llm, LlmCall(provider="anthropic", model="c", prompt="p")
        )

    assert ok.text == "m: p"
    assert error.type == "LlmRequestRejected"
    assert [r.provider for r in server.requests] == ["openai", "anthropic"]


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_tokens_are_counted_by_provider_model_and_kind(
    fake: FakeLLMServer, flavour: Flavour
) -> None:
    """`workflow_station_llm_tokens_total`, recorded through the activity's meter: here a real
    SDK runtime's, buffered so the test reads what a Prometheus endpoint would count."""
    buffer = MetricBuffer(1000)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    env = activity_env()
    env.metric_meter = runtime.metric_meter
    fake.reply("counted", usage=(12, 5))

    call = LlmCall(provider=provider_of(flavour), model="m-1", prompt="Count me")
    await env.run(activities_for(fake, flavour).call_llm, call)

    counted = {
        (dict(update.attributes)["kind"], dict(update.attributes)["provider"]): update.value
        for update in buffer.retrieve_updates()
        if update.metric.name == LLM_TOKENS and dict(update.attributes)["model"] == "m-1"
    }
    assert counted == {("input", provider_of(flavour)): 12, ("output", provider_of(flavour)): 5}


# call_llm with a conversation and an output schema (a DAG `llm` step)

LABEL_SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["fruit", "vegetable"]}},
    "required": ["label"],
}


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_structured_output_is_asked_for_validated_and_returned(
    fake: FakeLLMServer, flavour: Flavour
) -> None:
    acts = activities_for(fake, flavour)
    fake.reply_json({"label": "fruit"}, usage=(6, 2))
    call = LlmCall(
        provider=provider_of(flavour),
        model="m-1",
        system="Sort things.",
        messages=[
            LlmMessage(role="user", content="apple?"),
            LlmMessage(role="assistant", content="Ask me."),
            LlmMessage(role="user", content="pear?"),
        ],
        temperature=0.2,
        output_schema=LABEL_SCHEMA,
        label="step 'classify'",
    )

    result = await run(acts.call_llm, call)

    assert result.json_value == {"label": "fruit"}
    assert json.loads(result.text) == {"label": "fruit"}
    assert result.finish_reason in ("stop", "completed", "tool_use")
    assert result.usage.input_tokens == 6
    [sent] = fake.requests
    assert sent.json_schema == LABEL_SCHEMA
    assert sent.system == "Sort things."
    assert sent.user_messages == ["apple?", "pear?"]
    assert sent.json["temperature"] == 0.2


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_an_answer_off_the_schema_is_invalid_model_output_not_retried(
    fake: FakeLLMServer, flavour: Flavour
) -> None:
    acts = activities_for(fake, flavour)
    fake.when().reply_json({"label": "mineral"})
    call = LlmCall(
        provider=provider_of(flavour),
        model="m-1",
        prompt="apple?",
        output_schema=LABEL_SCHEMA,
        label="step 'classify'",
    )

    error = await run_failing(acts.call_llm, call)

    assert error.type == "InvalidModelOutput"
    assert error.non_retryable
    assert "'mineral' is not one of ['fruit', 'vegetable'] (at $.label)" in error.message
