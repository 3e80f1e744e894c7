"""Fallback models: when the model a call asks for is unavailable, the next of its chain answers.

Within one activity attempt, so a 529 moves to the next model in the time of one request
(the SDKs are built with `max_retries=0`: no hidden retry sleeps before we see the failure).
Which failures move the call, by the `ApplicationError` `activities.llm.activities` made of it:

    move to the next model (the model is unavailable, another may not be)
    ├── 429            when its Retry-After is longer than the wait budget
    │                  (LLM_FALLBACK_MAX_WAIT_SECONDS) or absent, or a second time after
    │                  waiting it once
    ├── 5xx, 529       server errors, overloaded
    ├── 408, timeouts  the model did not answer in time
    ├── connection     the provider could not be reached
    └── not configured a fallback's provider has no key on this worker (the call's own
                       provider unconfigured is a mistake to surface, not to route around)
    never move (another model would be asked the same wrong thing)
    ├── other 4xx      bad request, bad key, unknown model: `LlmRequestRejected`
    ├── a refusal      `LlmRequestRejected`
    └── a bad answer   the ladder's business (`activities.llm.ladder`), never a fallback's

When the last model fails too, its failure is raised (the last provider failure, when a
fallback is merely unconfigured) and Temporal retries the attempt from the call's own model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Generic, TypeVar

from temporalio.exceptions import ApplicationError

from activities.context import heartbeating
from activities.llm.models import FallbackHop, ModelRef
from kernel.errors import ErrorType
from kernel.metrics import count_llm_fallback

T = TypeVar("T")

_STATUS_REASONS = {408: "timed out", 429: "rate limited", 529: "overloaded"}
RATE_LIMITED = "429 rate limited"


@dataclass(frozen=True)
class Answered(Generic[T]):
    """What the first available model answered, which model that was, and the ones left."""

    value: T
    model: ModelRef
    hops: list[FallbackHop] = field(default_factory=list)


async def first_available(
    requested: ModelRef,
    chain: Sequence[ModelRef],
    ask: Callable[[ModelRef], Awaitable[T]],
    *,
    max_wait: timedelta,
) -> Answered[T]:
    """Ask `requested`, then each model of `chain` in turn while the one asked is unavailable.

    Args:
        requested: The call's own model.
        chain: The models to move to (`activities.llm.models.fallback_chain`).
        ask: Sends the call to one model.
        max_wait: The longest Retry-After a 429 is waited out (once) on the same model.

    Raises:
        ApplicationError: a failure that does not move the call, or the last model's.
    """
    models = [requested, *chain]
    hops: list[FallbackHop] = []
    last_unavailable: ApplicationError | None = None
    index, waited = 0, False
    while True:
        model = models[index]
        try:
            return Answered(await ask(model), model, hops)
        except ApplicationError as exc:
            reason = _reason_to_move(exc, own_model=index == 0)
            if reason is None:
                raise
            if index == len(models) - 1:
                if exc.type == ErrorType.PROVIDER_NOT_CONFIGURED and last_unavailable:
                    raise last_unavailable from None
                raise
            delay = exc.next_retry_delay
            if reason == RATE_LIMITED and not waited and delay is not None and delay <= max_wait:
                waited = True
                await heartbeating(asyncio.sleep(delay.total_seconds()))
                continue
            if exc.type == ErrorType.LLM_PROVIDER_ERROR:
                last_unavailable = exc
            hops.append(FallbackHop(provider=model.provider, model=model.model, reason=reason))
            count_llm_fallback(model.provider, model.model, reason)
            index, waited = index + 1, False


def _reason_to_move(error: ApplicationError, *, own_model: bool) -> str | None:
    """Why `error` moves the call to the next model (`529 overloaded`, `timed out`...), or None
    when it must not."""
    if error.type == ErrorType.PROVIDER_NOT_CONFIGURED:
        return None if own_model else "not configured"
    if error.type != ErrorType.LLM_PROVIDER_ERROR:
        return None
    details = error.details[0] if error.details and isinstance(error.details[0], dict) else {}
    status = details.get("status")
    if isinstance(status, int):
        return f"{status} {_STATUS_REASONS.get(status, 'server error')}"
    if details.get("timeout"):
        return "timed out"
    return "unavailable"
