"""The result cache's entries in Redis: a call's answer kept for its TTL, under a key of its
tenant and what decides the answer (`activities.http.cache`, `LlmActivities.call_llm`).

Keys hash the tenant with the content, so two tenants never share an entry, and live under
the internal key root, which no tenant or namespace may be named. Nothing secret goes in: the
callers hash requests as scheduled, before secrets are filled in. A failing Redis only means
a miss, or an entry not kept.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedAnswer:
    value: dict[str, Any]
    age_seconds: float


async def read_answer(redis: Redis, key: str, label: str) -> CachedAnswer | None:
    """The answer kept under `key`, with how long ago it was made; None on a miss."""
    try:
        raw = await redis.get(key)
    except (RedisError, OSError) as exc:
        log.warning("%s: result cache not read, calling: %r", label, exc)
        return None
    if raw is None:
        return None
    entry = json.loads(raw)
    return CachedAnswer(entry["value"], round(max(0.0, time.time() - entry["at"]), 3))


async def keep_answer(
    redis: Redis, key: str, value: dict[str, Any], ttl_seconds: int, label: str
) -> None:
    """Keep `value` under `key` for `ttl_seconds`."""
    entry = {"at": time.time(), "value": value}
    try:
        await redis.set(key, json.dumps(entry), ex=ttl_seconds)
    except (RedisError, OSError) as exc:
        log.warning("%s: result not cached: %r", label, exc)
