"""The fake LLM server's rate limits: a sliding window per API key, and the headers each
provider sends about it.

Every answer carries the provider's rate-limit headers (OpenAI `x-ratelimit-*-requests` and
`-tokens`, Anthropic `anthropic-ratelimit-requests-*` and `-tokens-*`); a request past the
key's limit is answered 429 with `retry-after`, as the providers do. Without a configured
limit the headers announce a generous one that nothing reaches.

The window is a real sliding one: at most `requests_per_minute` requests (and
`tokens_per_minute` tokens) accepted in any `window_seconds`, so a client that sends its calls
in bursts is refused even when its average is under the limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

#: What the headers announce when no limit was set.
UNLIMITED_REQUESTS = 1_000_000
UNLIMITED_TOKENS = 1_000_000_000


@dataclass
class KeyWindow:
    """The accepted requests of one key in the last window: (time, tokens), oldest first."""

    accepted: deque[tuple[float, int]] = field(default_factory=deque)

    def prune(self, now: float, window: float) -> None:
        while self.accepted and self.accepted[0][0] <= now - window:
            self.accepted.popleft()

    def tokens(self) -> int:
        return sum(tokens for _, tokens in self.accepted)


@dataclass(frozen=True)
class Verdict:
    """Whether a request was accepted, and the headers to answer it with."""

    accepted: bool
    headers: dict[str, str]
    retry_after: float = 0.0


def openai_duration(seconds: float) -> str:
    """A reset time as OpenAI writes it: `20ms`, `1.5s`, `6m0s`."""
    if seconds < 1:
        return f"{max(1, math.ceil(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.3g}s" if minutes else f"{rest:.3g}s"


class RateLimits:
    """Per-key sliding windows; thread-safe. `requests_per_minute=None`: no limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, KeyWindow] = {}
        self.requests_per_minute: int | None = None
        self.tokens_per_minute: int | None = None
        self.window_seconds = 60.0
        #: Requests answered 429 because of the limit.
        self.rejected = 0
        #: Requests accepted, with the time each was accepted (monotonic), oldest first.
        self.accepted_at: list[float] = []

    def set(
        self,
        requests_per_minute: int | None,
        tokens_per_minute: int | None,
        window_seconds: float,
    ) -> None:
        with self._lock:
            self.requests_per_minute = requests_per_minute
            self.tokens_per_minute = tokens_per_minute
            self.window_seconds = window_seconds

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
            self.requests_per_minute = self.tokens_per_minute = None
            self.rejected = 0
            self.accepted_at.clear()

    def check(self, key: str, tokens: int, provider: str) -> Verdict:
        """Count one request of `key` costing `tokens`, if the window has room for it."""
        now = time.monotonic()
        with self._lock:
            window = self._windows.setdefault(key, KeyWindow())
            window.prune(now, self.window_seconds)
            request_limit = self.requests_per_minute or UNLIMITED_REQUESTS
            token_limit = self.tokens_per_minute or UNLIMITED_TOKENS
            used_tokens = window.tokens()
            accepted = len(window.accepted) < request_limit and used_tokens + tokens <= token_limit
            if accepted:
                window.accepted.append((now, tokens))
                self.accepted_at.append(now)
                used_tokens += tokens
            else:
                self.rejected += 1
            oldest = window.accepted[0][0] if window.accepted else now
            reset = max(0.001, oldest + self.window_seconds - now)
            remaining_requests = max(0, request_limit - len(window.accepted))
            remaining_tokens = max(0, token_limit - used_tokens)
        headers = _headers(
            provider, request_limit, remaining_requests, token_limit, remaining_tokens, reset
        )
        if not accepted:
            headers["retry-after"] = str(math.ceil(reset))
        return Verdict(accepted, headers, reset)


def _headers(
    provider: str,
    request_limit: int,
    remaining_requests: int,
    token_limit: int,
    remaining_tokens: int,
    reset: float,
) -> dict[str, str]:
    if provider == "anthropic":
        at = (datetime.now(UTC) + timedelta(seconds=reset)).isoformat().replace("+00:00", "Z")
        return {
            "anthropic-ratelimit-requests-limit": str(request_limit),
            "anthropic-ratelimit-requests-remaining": str(remaining_requests),
            "anthropic-ratelimit-requests-reset": at,
            "anthropic-ratelimit-tokens-limit": str(token_limit),
            "anthropic-ratelimit-tokens-remaining": str(remaining_tokens),
            "anthropic-ratelimit-tokens-reset": at,
        }
    return {
        "x-ratelimit-limit-requests": str(request_limit),
        "x-ratelimit-remaining-requests": str(remaining_requests),
        "x-ratelimit-reset-requests": openai_duration(reset),
        "x-ratelimit-limit-tokens": str(token_limit),
        "x-ratelimit-remaining-tokens": str(remaining_tokens),
        "x-ratelimit-reset-tokens": openai_duration(reset),
    }
