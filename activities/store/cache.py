"""The result cache's entries in Redis: a call's answer kept for its TTL, under a key of its
tenant and what decides the answer (`activities.http.cache`, `LlmActivities.call_llm`).

Keys hash the tenant with the content, so two tenants never share an entry, and live under
the internal key root, which no tenant or namespace may be named. Nothing secret goes in: the
callers hash requests as scheduled, before secrets are filled in. A failing Redis only means
a miss, or an entry not kept.

Stored once: a field of an answer of `BLOB_MIN_BYTES` or more (an HTTP body, a model's long
text) is kept apart, named by the SHA-256 of its JSON as the large-payload store names its
blobs (`activities.store.blobs.content_key`), and the entry holds that name. Many requests
with the same large answer (one page fetched with 100 query strings) keep it once. Not in
the large-payload store itself: that one holds Temporal payloads, whose bytes differ for the
same body (each carries its call's attempt, duration and URL), under its own TTL. A blob
lives as long as the longest-lived entry naming it (`_KEEP_BLOB`); an entry whose blob is
gone reads as a miss.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from activities.store.blobs import content_key
from activities.store.models import INTERNAL_KEY_ROOT

log = logging.getLogger(__name__)

#: A field of an answer this large (its JSON, in bytes) or larger is kept once, by content.
BLOB_MIN_BYTES = 16 * 1024
#: Where those fields live: `<root>:<sha256 of the field's JSON>`.
CACHE_BLOB_PREFIX = f"{INTERNAL_KEY_ROOT}:result-cache-blob:"

#: Keep a blob for at least `ARGV[2]` seconds more, writing it if it is not there: in one
#: step, so an entry never names a blob that expires before it.
_KEEP_BLOB = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 'OK'
"""


@dataclass(frozen=True)
class CachedAnswer:
    value: dict[str, Any]
    age_seconds: float


async def read_answer(redis: Redis, key: str, label: str) -> CachedAnswer | None:
    """The answer kept under `key`, with how long ago it was made; None on a miss."""
    try:
        raw = await redis.get(key)
        if raw is None:
            return None
        entry = json.loads(raw)
        blobs: dict[str, str] = entry.get("blobs", {})
        names = [CACHE_BLOB_PREFIX + name for name in blobs.values()]
        texts = await redis.mget(names) if names else []
    except (RedisError, OSError) as exc:
        log.warning("%s: result cache not read, calling: %r", label, exc)
        return None
    value = dict(entry["value"])
    for field, text in zip(blobs, texts, strict=True):
        if text is None:
            return None  # evicted or deleted: a miss, not half an answer
        value[field] = json.loads(text)
    return CachedAnswer(value, round(max(0.0, time.time() - entry["at"]), 3))


async def keep_answer(
    redis: Redis, key: str, value: dict[str, Any], ttl_seconds: int, label: str
) -> None:
    """Keep `value` under `key` for `ttl_seconds`, its large fields once by content."""
    inline: dict[str, Any] = {}
    blobs: dict[str, str] = {}
    texts: dict[str, str] = {}
    for field, item in value.items():
        text = json.dumps(item, separators=(",", ":"))
        if len(text) < BLOB_MIN_BYTES:
            inline[field] = item
            continue
        name = content_key(text.encode())
        blobs[field], texts[name] = name, text
    entry = {"at": time.time(), "value": inline, "blobs": blobs}
    try:
        for name, text in texts.items():
            await redis.eval(_KEEP_BLOB, 1, CACHE_BLOB_PREFIX + name, text, ttl_seconds)
        await redis.set(key, json.dumps(entry), ex=ttl_seconds)
    except (RedisError, OSError) as exc:
        log.warning("%s: result not cached: %r", label, exc)
