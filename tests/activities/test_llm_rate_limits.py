"""The rate limiter: calls wait for their slot in a schedule shared through Redis, and learn
from the providers' headers, against the fake's real sliding-window limit (which answers 429
past it). Assertions count 429s and compare waits; none times anything."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from temporalio.exceptions import ApplicationError

from activities.llm.activities import LlmActivities, build_llm_clients
from activities.llm.models import LlmCall, LlmProvider, LlmText
from activities.llm.ratelimit import (
    HEADROOM,
    RateLimit,
    RateLimiter,
    RateLimitHeaders,
    estimate_tokens,
    openai_reset_seconds,
    read_headers,
    schedule_key,
)
from gateway.live import LiveEvents
from kernel.live import WAITING_FOR_RATE_LIMIT
from tests.conftest import activity_env, unique
from tests.fakes.llm_server import FakeLLMServer


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeLLMServer) -> Iterator[FakeLLMServer]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


def activities(
    fake: FakeLLMServer, redis: Redis, limits: dict[str, RateLimit] | None, *, limited: bool = True
) -> LlmActivities:
    openai_client, anthropic_client = build_llm_clients(
        openai_api_key=unique("sk"),  # a schedule of its own: no other test's calls in it
        openai_base_url=fake.base_url_openai,
        anthropic_api_key=unique("sk-ant"),
        anthropic_base_url=fake.base_url_anthropic,
    )
    limiter = RateLimiter(redis, limits, max_wait_seconds=60) if limited else None
    return LlmActivities(
        openai=openai_client, anthropic=anthropic_client, redis=redis, rate_limiter=limiter
    )


async def fan_out(llm: LlmActivities, calls: int, provider: LlmProvider = "openai") -> list[Any]:
    """`calls` calls at once, as a fan-out of steps on several workers sends them."""
    workflow_id = unique("fan-out")

    async def one(index: int) -> Any:
        call = LlmCall(provider=provider, model="m-limited", prompt=f"item {index}", label="s")
        try:
            return await activity_env(workflow_id=workflow_id).run(llm.call_llm, call)
        except ApplicationError as exc:
            return exc

    return await asyncio.gather(*(one(index) for index in range(calls)))


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_fan_out_under_a_configured_limit_is_spaced_and_never_refused(
    fake: FakeLLMServer, redis: Redis, provider: LlmProvider
) -> None:
    # 20 requests in any two seconds; the schedule keeps to 420 a minute (7 a second, with
    # room for a loaded test machine to send a few late ones together), 30 calls in ~4.5 s.
    fake.limit(requests_per_minute=20, window_seconds=2)
    limits = {f"{provider}:m-limited": RateLimit(requests_per_minute=420)}
    answers = await fan_out(activities(fake, redis, limits), 30, provider)
    failed = [answer for answer in answers if not isinstance(answer, LlmText)]
    assert failed == []
    assert fake.limits.rejected == 0
    waits = [answer.rate_limit_wait_seconds for answer in answers]
    # The first call goes at once; the others (all but a call or two that a busy test
    # machine reserved late, when its slot had already come) waited for slots of their own.
    assert min(waits) == 0
    assert sum(wait > 0 for wait in waits) >= 25
    assert len(fake.limits.accepted_at) == 30


async def test_the_same_fan_out_without_the_limiter_bounces(
    fake: FakeLLMServer, redis: Redis
) -> None:
    fake.limit(requests_per_minute=20, window_seconds=2)
    answers = await fan_out(activities(fake, redis, None, limited=False), 30)
    refused = [a for a in answers if isinstance(a, ApplicationError)]
    assert fake.limits.rejected == len(refused) >= 10


async def test_remaining_zero_and_its_reset_make_the_next_call_wait(
    fake: FakeLLMServer, redis: Redis
) -> None:
    # The limit is configured far above the fake's, so only the headers can hold call 2 back.
    fake.limit(requests_per_minute=1, window_seconds=1)
    llm = activities(fake, redis, {"openai": RateLimit(requests_per_minute=60_000)})
    workflow_id = unique("learn")
    call = LlmCall(provider="openai", model="m", prompt="p", step_name="s")
    first = await activity_env(workflow_id=workflow_id).run(llm.call_llm, call)
    assert fake.requests[-1].json["model"] == "m"
    second = await activity_env(workflow_id=workflow_id).run(llm.call_llm, call)
    assert fake.limits.rejected == 0
    assert first.rate_limit_wait_seconds == 0 < second.rate_limit_wait_seconds
    # Watchers saw the wait as it began.
    live = [event for _, event in await LiveEvents(redis, workflow_id).after("0")]
    assert [event["event"] for event in live] == [WAITING_FOR_RATE_LIMIT]
    assert live[0]["step_name"] == "s"


async def test_a_429_retry_after_holds_the_next_call_back(
    fake: FakeLLMServer, redis: Redis
) -> None:
    fake.fail(429, retry_after=1)
    llm = activities(fake, redis, None)
    env = activity_env()
    call = LlmCall(provider="anthropic", model="m", prompt="p")
    with pytest.raises(ApplicationError):
        await env.run(llm.call_llm, call)
    answer = await env.run(llm.call_llm, call)
    assert answer.rate_limit_wait_seconds > 0


async def test_a_learned_limit_spaces_calls(redis: Redis) -> None:
    # Reserving waits for nothing, so the waits differ by the interval to within the
    # milliseconds between two reservations; a slow limit makes those negligible.
    limiter = RateLimiter(redis, max_wait_seconds=60)
    key = schedule_key("openai", "m", unique("sk"))
    assert await limiter.reserve(key, "openai", "m", 10) == 0
    assert await limiter.reserve(key, "openai", "m", 10) == 0  # nothing known yet
    await limiter.learn(key, RateLimitHeaders(requests_limit=6))
    waits = [await limiter.reserve(key, "openai", "m", 10) for _ in range(3)]
    interval = 60 / (6 * HEADROOM)
    assert waits[0] == pytest.approx(0, abs=0.5)
    assert waits[1] == pytest.approx(interval, abs=0.5)
    assert waits[2] == pytest.approx(2 * interval, abs=0.5)


async def test_tokens_per_minute_spaces_by_the_estimate(redis: Redis) -> None:
    limiter = RateLimiter(redis, {"openai": RateLimit(tokens_per_minute=6000)}, max_wait_seconds=60)
    key = schedule_key("openai", "m", unique("sk"))
    await limiter.reserve(key, "openai", "m", 950)
    second = await limiter.reserve(key, "openai", "m", 95)
    third = await limiter.reserve(key, "openai", "m", 95)
    # The second call waits for the first one's 950 tokens, the third for the second's 95.
    assert second == pytest.approx(950 / 100 / HEADROOM, abs=0.5)
    assert third - second == pytest.approx(95 / 100 / HEADROOM, abs=0.5)


async def test_a_slot_beyond_the_longest_wait_is_not_taken(
    fake: FakeLLMServer, redis: Redis
) -> None:
    limiter = RateLimiter(redis, {"openai": RateLimit(requests_per_minute=1)}, max_wait_seconds=5)
    key = schedule_key("openai", "m", unique("sk"))
    assert await limiter.reserve(key, "openai", "m", 1) == 0
    refused = await limiter.reserve(key, "openai", "m", 1)
    assert refused < -5
    # Nothing was reserved: the next caller is told the same wait, not a longer one.
    assert await limiter.reserve(key, "openai", "m", 1) == pytest.approx(refused, abs=0.05)


def test_the_headers_of_both_providers_are_read() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    openai_said = read_headers(
        "openai",
        {
            "x-ratelimit-limit-requests": "600",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1m30s",
            "x-ratelimit-limit-tokens": "150000",
            "x-ratelimit-remaining-tokens": "149000",
            "x-ratelimit-reset-tokens": "20ms",
        },
        now,
    )
    assert openai_said == RateLimitHeaders(600, 150_000, 90.0)
    reset = (now + timedelta(seconds=7)).isoformat().replace("+00:00", "Z")
    anthropic_said = read_headers(
        "anthropic",
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": reset,
            "retry-after": "3",
        },
        now,
    )
    assert anthropic_said == RateLimitHeaders(50, None, 7.0)
    assert read_headers("openai", {}, now) == RateLimitHeaders()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("20ms", 0.02), ("1.5s", 1.5), ("6m0s", 360.0), ("1h2m3s", 3723.0), ("soon", None)],
)
def test_openai_reset_durations(text: str, seconds: float | None) -> None:
    assert openai_reset_seconds(text) == seconds


def test_the_estimate_counts_the_prompt_and_what_the_answer_may_spend() -> None:
    assert estimate_tokens(400, 50) == 150


def test_a_schedule_is_keyed_by_a_hash_of_the_api_key_never_the_key() -> None:
    key = schedule_key("openai", "gpt-4o-mini", "sk-secret")
    assert key.startswith("llm-rate:openai:gpt-4o-mini:")
    assert "sk-secret" not in key
    assert key != schedule_key("openai", "gpt-4o-mini", "sk-other")
