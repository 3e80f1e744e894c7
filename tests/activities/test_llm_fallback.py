"""Fallback models of the LLM activities: which failures move a call to the next model of its
chain, within the same attempt, through the real SDKs against the fake LLM server."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any, Literal

import pytest
from temporalio.exceptions import ApplicationError

from activities.llm.activities import LlmActivities, build_llm_clients
from activities.llm.models import (
    ConditionVerdictRequest,
    FallbackHop,
    LlmCall,
    ModelRef,
    fallback_chain,
)
from settings.config import Settings
from tests.conftest import activity_env
from tests.fakes.llm_server import FakeLLMServer
from worker import open_activities

Provider = Literal["openai", "anthropic"]
PROVIDERS: list[Provider] = ["openai", "anthropic"]


def other(provider: Provider) -> Provider:
    return "anthropic" if provider == "openai" else "openai"


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeLLMServer) -> FakeLLMServer:
    fake_server.reset()
    return fake_server


def activities_for(
    fake: FakeLLMServer,
    *,
    openai_url: str | None = None,
    request_timeout_seconds: float = 300.0,
    **options: Any,
) -> LlmActivities:
    openai_client, anthropic_client = build_llm_clients(
        openai_api_key="sk-test",
        openai_base_url=openai_url or fake.base_url_openai,
        anthropic_api_key="sk-ant-test",
        anthropic_base_url=fake.base_url_anthropic,
        request_timeout_seconds=request_timeout_seconds,
    )
    return LlmActivities(openai=openai_client, anthropic=anthropic_client, **options)


def call_to(provider: Provider, **fields: Any) -> LlmCall:
    return LlmCall(
        provider=provider, model="primary", prompt="Summarise.", label="step 'sum'", **fields
    )


def backup(provider: Provider) -> list[ModelRef]:
    return [ModelRef(provider=provider, model="backup")]


async def ask(acts: LlmActivities, call: LlmCall) -> Any:
    return await activity_env().run(acts.call_llm, call)


async def ask_failing(acts: LlmActivities, call: LlmCall) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await ask(acts, call)
    return caught.value


def models_asked(fake: FakeLLMServer) -> list[tuple[str, str]]:
    return [(request.provider, request.model) for request in fake.requests]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_529_moves_to_the_fallback_at_once_and_both_models_are_recorded(
    fake: FakeLLMServer, provider: Provider
) -> None:
    fake.when(model="primary").fail(529)
    fake.when(model="backup").reply("from the backup", usage=(4, 3))

    result = await ask(activities_for(fake), call_to(provider, fallback=backup(other(provider))))

    assert (result.text, result.provider, result.model) == (
        "from the backup",
        other(provider),
        "backup",
    )
    assert result.requested_model == "primary"
    assert result.fallback == [
        FallbackHop(provider=provider, model="primary", reason="529 overloaded")
    ]
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.total_tokens) == (
        4,
        3,
        7,
    )
    # One request each: no SDK retry slept before the move (max_retries=0), and no Temporal
    # retry was needed (this is the first attempt).
    assert models_asked(fake) == [(provider, "primary"), (other(provider), "backup")]


@pytest.mark.parametrize(
    ("status", "reason"),
    [(500, "500 server error"), (503, "503 server error"), (408, "408 timed out")],
)
async def test_server_errors_move_to_the_next_model(
    fake: FakeLLMServer, status: int, reason: str
) -> None:
    fake.when(model="primary").fail(status)

    result = await ask(activities_for(fake), call_to("openai", fallback=backup("openai")))

    assert result.model == "backup"
    assert [hop.reason for hop in result.fallback] == [reason]


async def test_the_chain_is_walked_in_order_until_a_model_answers(fake: FakeLLMServer) -> None:
    fake.when(model="primary").fail(529)
    fake.when(model="second").fail(500)
    chain = [ModelRef(provider="openai", model="second"), *backup("anthropic")]

    result = await ask(activities_for(fake), call_to("anthropic", fallback=chain))

    assert (result.provider, result.model) == ("anthropic", "backup")
    assert [(hop.model, hop.reason) for hop in result.fallback] == [
        ("primary", "529 overloaded"),
        ("second", "500 server error"),
    ]


async def test_when_every_model_is_down_the_last_failure_is_retryable(
    fake: FakeLLMServer,
) -> None:
    fake.when().fail(529)

    error = await ask_failing(activities_for(fake), call_to("anthropic", fallback=backup("openai")))

    assert (error.type, error.non_retryable) == ("LlmProviderError", False)
    assert models_asked(fake) == [("anthropic", "primary"), ("openai", "backup")]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_bad_answer_never_triggers_the_fallback(
    fake: FakeLLMServer, provider: Provider
) -> None:
    fake.when(model="primary").reply_json({"label": 7})
    call = call_to(
        provider,
        fallback=backup(other(provider)),
        output_schema={"type": "object", "properties": {"label": {"type": "string"}}},
        repair_attempts=1,
    )

    error = await ask_failing(activities_for(fake), call)

    assert error.type == "InvalidModelOutput"
    assert models_asked(fake) == [(provider, "primary"), (provider, "primary")]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status", [400, 401, 404])
async def test_a_client_error_never_triggers_the_fallback(
    fake: FakeLLMServer, provider: Provider, status: int
) -> None:
    fake.when(model="primary").fail(status)

    error = await ask_failing(activities_for(fake), call_to(provider, fallback=backup(provider)))

    assert error.type == "LlmRequestRejected"
    assert models_asked(fake) == [(provider, "primary")]


async def test_a_refusal_never_triggers_the_fallback(fake: FakeLLMServer) -> None:
    fake.when(model="primary").refuse()

    error = await ask_failing(activities_for(fake), call_to("openai", fallback=backup("openai")))

    assert error.type == "LlmRequestRejected"
    assert models_asked(fake) == [("openai", "primary")]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_fallback_false_lets_the_529_surface_even_with_an_operator_chain(
    fake: FakeLLMServer, provider: Provider
) -> None:
    fake.when(model="primary").fail(529, retry_after=3)
    acts = activities_for(fake, fallback_chain=backup(other(provider)))

    error = await ask_failing(acts, call_to(provider, fallback=False))

    assert (error.type, error.non_retryable) == ("LlmProviderError", False)
    assert error.next_retry_delay == timedelta(seconds=3)
    assert models_asked(fake) == [(provider, "primary")]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_operator_chain_applies_when_the_call_names_none(
    fake: FakeLLMServer, provider: Provider
) -> None:
    fake.when(model="primary").fail(529)
    acts = activities_for(fake, fallback_chain=backup(other(provider)))

    result = await ask(acts, call_to(provider))

    assert (result.provider, result.model) == (other(provider), "backup")


async def test_the_call_s_own_chain_replaces_the_operator_s(fake: FakeLLMServer) -> None:
    fake.when(model="primary").fail(529)
    acts = activities_for(fake, fallback_chain=backup("openai"))

    result = await ask(
        acts, call_to("openai", fallback=[ModelRef(provider="anthropic", model="own")])
    )

    assert (result.provider, result.model) == ("anthropic", "own")


@pytest.fixture
async def configured_worker(
    fake: FakeLLMServer, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[LlmActivities]:
    """The LLM activities as the worker builds them from its environment."""
    monkeypatch.setenv(
        "LLM_FALLBACK_CHAIN", json.dumps([{"provider": "anthropic", "model": "backup"}])
    )
    settings = Settings(
        _env_file=None,
        redis_url=redis_url,
        openai_base_url=fake.base_url_openai,
        anthropic_base_url=fake.base_url_anthropic,
    )
    async with open_activities(settings, environ={}) as activities:
        yield activities.llm


async def test_llm_fallback_chain_from_the_environment_applies(
    fake: FakeLLMServer, configured_worker: LlmActivities
) -> None:
    fake.when(model="primary").fail(529)

    result = await ask(configured_worker, call_to("openai"))

    assert (result.provider, result.model, result.requested_model) == (
        "anthropic",
        "backup",
        "primary",
    )


async def test_a_short_retry_after_is_waited_out_once_on_the_same_model(
    fake: FakeLLMServer,
) -> None:
    fake.when(model="primary").fail(429, times=1, retry_after=0)
    fake.when(model="primary").reply("after the wait")

    result = await ask(activities_for(fake), call_to("openai", fallback=backup("anthropic")))

    assert (result.model, result.fallback) == ("primary", [])
    assert models_asked(fake) == [("openai", "primary"), ("openai", "primary")]


async def test_a_repeated_429_moves_to_the_fallback(fake: FakeLLMServer) -> None:
    fake.when(model="primary").fail(429, retry_after=0)

    result = await ask(activities_for(fake), call_to("openai", fallback=backup("anthropic")))

    assert result.model == "backup"
    assert [hop.reason for hop in result.fallback] == ["429 rate limited"]
    assert models_asked(fake) == [
        ("openai", "primary"),
        ("openai", "primary"),
        ("anthropic", "backup"),
    ]


@pytest.mark.parametrize("retry_after", [None, 30])
async def test_a_429_past_the_wait_budget_moves_at_once(
    fake: FakeLLMServer, retry_after: int | None
) -> None:
    fake.when(model="primary").fail(429, retry_after=retry_after)
    acts = activities_for(fake, fallback_max_wait=timedelta(seconds=2))

    result = await ask(acts, call_to("anthropic", fallback=backup("openai")))

    assert result.model == "backup"
    assert models_asked(fake) == [("anthropic", "primary"), ("openai", "backup")]


async def test_a_timeout_moves_to_the_fallback(fake: FakeLLMServer) -> None:
    fake.when(model="primary").reply("too late", delay=2)
    acts = activities_for(fake, request_timeout_seconds=0.3)

    result = await ask(acts, call_to("openai", fallback=backup("anthropic")))

    assert result.model == "backup"
    assert [hop.reason for hop in result.fallback] == ["timed out"]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_provider_moves_to_the_fallback(fake: FakeLLMServer) -> None:
    acts = activities_for(fake, openai_url=f"http://127.0.0.1:{unused_port()}/v1")

    result = await ask(acts, call_to("openai", fallback=backup("anthropic")))

    assert (result.provider, result.model) == ("anthropic", "backup")
    assert [hop.reason for hop in result.fallback] == ["unavailable"]


async def test_an_unconfigured_fallback_is_skipped_and_the_provider_failure_surfaces(
    fake: FakeLLMServer,
) -> None:
    openai_client, _ = build_llm_clients(
        openai_api_key="sk-test",
        openai_base_url=fake.base_url_openai,
        anthropic_api_key=None,
        anthropic_base_url=None,
    )
    acts = LlmActivities(openai=openai_client, anthropic=None)
    fake.when(model="primary").fail(529)

    error = await ask_failing(acts, call_to("openai", fallback=backup("anthropic")))

    assert error.type == "LlmProviderError"
    assert "529" in error.message


async def test_a_condition_verdict_follows_the_operator_chain(fake: FakeLLMServer) -> None:
    fake.when(model="primary").fail(529)
    fake.when(model="backup").reply_json({"verdict": True, "reason": "it holds"})
    acts = activities_for(fake, fallback_chain=backup("anthropic"))
    request = ConditionVerdictRequest(
        provider="openai", model="primary", expression="it is long", result_text="text"
    )

    verdict = await activity_env().run(acts.judge_condition, request)

    assert (verdict.verdict, verdict.reason) == (True, "it holds")
    assert models_asked(fake) == [("openai", "primary"), ("anthropic", "backup")]


def test_the_chain_is_the_call_s_own_else_none_when_false_else_the_operator_s() -> None:
    operator = backup("anthropic")
    own = [ModelRef(provider="openai", model="own")]

    assert fallback_chain(own, operator) == own
    assert fallback_chain([], operator) == []
    assert fallback_chain(False, operator) == []
    assert fallback_chain(None, operator) == operator
