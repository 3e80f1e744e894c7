"""One LLM request sent in its rate-limit slot: wait for the slot, send, learn from the answer.

The wait comes before the request and outside its timeout: the SDK's request timeout starts
when the request is sent, and the DAG workflow gives an `llm` step's activity
`MAX_RATE_LIMIT_WAIT` more than the step's timeout (`activities.llm.models`), so however
long a call waited, its provider still gets the step's whole timeout to answer. While it
waits, the activity heartbeats (the caller runs under `heartbeating`) and the run's watchers
see `step.waiting_for_rate_limit`; the result says how long it waited
(`rate_limit_wait_seconds`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

import anthropic
import openai

from activities.llm.ratelimit import RateLimiter, estimate_tokens, read_headers, schedule_key
from activities.llm.streaming import LiveStep
from kernel import errors
from kernel.errors import ErrorType
from kernel.live import WAITING_FOR_RATE_LIMIT


class _Answered(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...


R = TypeVar("R", bound=_Answered)


@dataclass(frozen=True)
class Call:
    """What the limiter needs to know of a request before it is sent."""

    provider: str
    model: str
    api_key: str | None
    prompt_chars: int
    max_tokens: int
    label: str = ""


async def paced(
    limiter: RateLimiter | None, live: LiveStep, call: Call, send: Callable[[], Awaitable[R]]
) -> tuple[R, float]:
    """`send()` once its slot has come; its raw answer and the seconds it waited.

    Raises:
        ApplicationError: `LlmProviderError`, retried after the wait, when the slot is further
            than the limiter's longest wait (nothing reserved).
    """
    if limiter is None:
        return await send(), 0.0
    key = schedule_key(call.provider, call.model, call.api_key)
    wait = await limiter.reserve(
        key, call.provider, call.model, estimate_tokens(call.prompt_chars, call.max_tokens)
    )
    if wait < 0:
        raise errors.application_error(
            ErrorType.LLM_PROVIDER_ERROR,
            f"{call.label + ': ' if call.label else ''}the {call.provider} rate limit of "
            f"{call.model} has no room for {-wait:.0f} s; asking again then",
            {"provider": call.provider, "rate_limit_wait_seconds": -wait},
            next_retry_delay=timedelta(seconds=-wait),
        )
    if wait > 0:
        await live.send(WAITING_FOR_RATE_LIMIT, {"seconds": round(wait, 3)})
        await asyncio.sleep(wait)
    try:
        answer = await send()
    except (openai.APIStatusError, anthropic.APIStatusError) as exc:
        await limiter.learn(key, read_headers(call.provider, exc.response.headers, _now()))
        raise
    await limiter.learn(key, read_headers(call.provider, answer.headers, _now()))
    return answer, wait


def _now() -> datetime:
    return datetime.now(UTC)
