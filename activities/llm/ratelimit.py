"""Provider-aware rate limits: every worker spaces its LLM calls through one schedule in Redis.

A provider limits requests and tokens per minute for each API key and model, and answers 429
past it. Left alone, a fan-out of a thousand `llm` steps sends as many calls as the workers
can run, most bounce, and Temporal's backoff turns the run into a storm of retries. Instead,
before each attempt the activity asks `RateLimiter.reserve` for a slot: a Lua script keeps,
per provider, model and API key (hashed: no key is written to Redis), the theoretical arrival
time of the next request and the next token (GCRA, the generic cell rate algorithm), hands
the caller the start time it reserved, and moves the schedule on by one request and the
call's estimated tokens. The caller waits for its slot (heartbeating) and then sends, so the
calls of every worker leave evenly spaced at `HEADROOM` of the limit and the provider never
has a reason to refuse them.

Where the limit comes from, first found wins:

- `LLM_RATE_LIMITS`, the operator's: `{"openai:gpt-4o-mini": {"requests_per_minute": 600}}`,
  or `"openai"` for every model of a provider;
- what the provider said last (`learn`): `x-ratelimit-limit-requests` / `-tokens` (OpenAI),
  `anthropic-ratelimit-requests-limit` / `-tokens-limit`, kept an hour.

The headers also stop the schedule: `remaining` 0 blocks every caller until its `reset`, and
a 429's `retry-after` blocks until then. A call's tokens are estimated before sending as a
quarter of its prompt's characters plus its `max_tokens`, which is how OpenAI counts a
request against a tokens-per-minute limit.

A slot further than `MAX_RATE_LIMIT_WAIT` away is not taken: the attempt fails retryably
(`LlmProviderError`, with the wait as Temporal's next retry delay) and nothing is reserved.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field
from redis.asyncio import Redis

#: The share of a limit the schedule spends: a provider's window and ours never line up to the
#: millisecond, and a call that arrives a little early must still find room.
HEADROOM = 0.95
#: How long a limit the provider announced is remembered without being said again.
LEARNED_FOR_SECONDS = 3600
#: Characters per token of the estimate: OpenAI's rule of thumb for English text.
CHARS_PER_TOKEN = 4


class RateLimit(BaseModel):
    """A provider's limit for one API key and model (`LLM_RATE_LIMITS`)."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)


@dataclass(frozen=True)
class RateLimitHeaders:
    """What a provider's answer said about its limits; None: not said."""

    requests_limit: int | None = None
    tokens_limit: int | None = None
    #: Seconds to wait before the next call: `retry-after`, or the reset of a limit whose
    #: `remaining` is 0.
    block_seconds: float = 0.0


_DURATION = re.compile(
    r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?"
    r"(?:(\d+(?:\.\d+)?)ms)?"
)


def openai_reset_seconds(value: str) -> float | None:
    """OpenAI's reset duration (`20ms`, `1.5s`, `6m0s`, `1h2m3s`) in seconds."""
    match = _DURATION.fullmatch(value.strip())
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds, millis = (float(part) if part else 0.0 for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def _seconds_until(value: str, now: datetime) -> float | None:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (moment - now).total_seconds())


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def read_headers(provider: str, headers: Mapping[str, str], now: datetime) -> RateLimitHeaders:
    """What `headers` (a provider's answer, 429 or not) say about its limits."""
    waits: list[float] = []
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        try:
            waits.append(max(0.0, float(retry_after)))
        except ValueError:
            pass
    if provider == "anthropic":
        limits = {
            kind: (
                headers.get(f"anthropic-ratelimit-{kind}-limit"),
                headers.get(f"anthropic-ratelimit-{kind}-remaining"),
                headers.get(f"anthropic-ratelimit-{kind}-reset"),
            )
            for kind in ("requests", "tokens")
        }
    else:
        limits = {
            kind: (
                headers.get(f"x-ratelimit-limit-{kind}"),
                headers.get(f"x-ratelimit-remaining-{kind}"),
                headers.get(f"x-ratelimit-reset-{kind}"),
            )
            for kind in ("requests", "tokens")
        }
    for _limit, remaining, reset in limits.values():
        if _int(remaining) == 0 and reset is not None:
            wait = (
                _seconds_until(reset, now)
                if provider == "anthropic"
                else openai_reset_seconds(reset)
            )
            if wait is not None:
                waits.append(wait)
    return RateLimitHeaders(
        requests_limit=_int(limits["requests"][0]),
        tokens_limit=_int(limits["tokens"][0]),
        block_seconds=max(waits, default=0.0),
    )


def estimate_tokens(prompt_chars: int, max_tokens: int) -> int:
    """What a call will count against a tokens-per-minute limit, before it is sent."""
    return math.ceil(prompt_chars / CHARS_PER_TOKEN) + max_tokens


def schedule_key(provider: str, model: str, api_key: str | None) -> str:
    """The Redis key of one schedule; the API key only as a short hash."""
    digest = hashlib.sha256((api_key or "").encode()).hexdigest()[:16]
    return f"llm-rate:{provider}:{model}:{digest}"


# KEYS[1]: the schedule. ARGV: configured requests/min, tokens/min (0: none), the call's
# tokens, headroom, the longest wait worth reserving. Returns the wait in seconds (a string),
# negative when the slot is too far away and nothing was reserved.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local headroom = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])
local h = redis.call('HMGET', KEYS[1], 'tat_r', 'tat_t', 'block', 'rpm', 'tpm')
if rpm <= 0 then rpm = tonumber(h[4]) or 0 end
if tpm <= 0 then tpm = tonumber(h[5]) or 0 end
local start = math.max(now, tonumber(h[3]) or 0)
local tat_r = tonumber(h[1]) or 0
local tat_t = tonumber(h[2]) or 0
if rpm > 0 then start = math.max(start, tat_r) end
if tpm > 0 then start = math.max(start, tat_t) end
if start - now > max_wait then return tostring(now - start) end
if rpm > 0 then tat_r = start + 60 / (rpm * headroom) end
if tpm > 0 then tat_t = start + 60 * cost / (tpm * headroom) end
redis.call('HSET', KEYS[1], 'tat_r', tostring(tat_r), 'tat_t', tostring(tat_t))
redis.call('EXPIRE', KEYS[1], ARGV[6])
return tostring(start - now)
"""

# KEYS[1]: the schedule. ARGV: the announced requests/min and tokens/min (0: not said), seconds
# to block every caller for (0: none), how long to remember.
_LEARN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if tonumber(ARGV[1]) > 0 then redis.call('HSET', KEYS[1], 'rpm', ARGV[1]) end
if tonumber(ARGV[2]) > 0 then redis.call('HSET', KEYS[1], 'tpm', ARGV[2]) end
local block = tonumber(ARGV[3])
if block > 0 then
  local until_ = now + block
  local known = tonumber(redis.call('HGET', KEYS[1], 'block')) or 0
  if until_ > known then redis.call('HSET', KEYS[1], 'block', tostring(until_)) end
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


class RateLimiter:
    """The shared schedule of LLM calls, one per provider, model and API key."""

    def __init__(
        self,
        redis: Redis,
        configured: Mapping[str, RateLimit] | None = None,
        *,
        max_wait_seconds: float,
    ) -> None:
        self._redis = redis
        self._configured = dict(configured or {})
        self._max_wait = max_wait_seconds
        self._reserve = redis.register_script(_RESERVE)
        self._learn = redis.register_script(_LEARN)

    def configured(self, provider: str, model: str) -> RateLimit:
        """The operator's limit for `model`: its own entry, else its provider's."""
        return (
            self._configured.get(f"{provider}:{model}")
            or self._configured.get(provider)
            or RateLimit()
        )

    async def reserve(self, key: str, provider: str, model: str, tokens: int) -> float:
        """Reserve the next slot of `key`'s schedule for a call of `tokens`; the seconds to
        wait before sending it, or a negative number (minus the wait) when the slot is more
        than the longest wait away and nothing was reserved."""
        limit = self.configured(provider, model)
        wait = await self._reserve(
            keys=[key],
            args=[
                limit.requests_per_minute or 0,
                limit.tokens_per_minute or 0,
                tokens,
                HEADROOM,
                self._max_wait,
                LEARNED_FOR_SECONDS,
            ],
        )
        return float(wait)

    async def learn(self, key: str, said: RateLimitHeaders) -> None:
        """Remember what a provider's answer said about `key`'s limits."""
        if said.requests_limit is None and said.tokens_limit is None and not said.block_seconds:
            return
        await self._learn(
            keys=[key],
            args=[
                said.requests_limit or 0,
                said.tokens_limit or 0,
                said.block_seconds,
                LEARNED_FOR_SECONDS,
            ],
        )
