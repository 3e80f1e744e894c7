"""The result cache of HTTP calls (`HttpCall.cache`): a call's answer, kept in Redis for its
TTL, under a key of what decides the answer.

The key is the call as scheduled, its `{{secrets.…}}` placeholders not yet filled in, so no
secret value is hashed or stored and a rotated secret still hits; headers that never change
the answer (the idempotency key, trace context) are left out of it, and the tenant is part of
it, so two tenants never share an entry. Entries live under the internal key root, which no
tenant or namespace may be named, and a failing Redis only means a miss or an unsaved entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from activities.http.models import DEFAULT_TENANT, IDEMPOTENCY_KEY_HEADER, HttpCall, HttpResult
from activities.store.models import INTERNAL_KEY_ROOT

log = logging.getLogger(__name__)

#: Where entries live: `<root>:<sha256 of tenant and request>`.
CACHE_KEY_PREFIX = f"{INTERNAL_KEY_ROOT}:result-cache:"

#: Headers (lower-cased) that differ between identical requests without changing the answer.
UNKEYED_HEADERS = frozenset(
    {IDEMPOTENCY_KEY_HEADER.lower(), "traceparent", "tracestate", "baggage", "x-request-id"}
)


def cache_key(call: HttpCall) -> str:
    """The entry of `call`'s answer: its tenant, method, URL, query, body and headers."""
    content = {
        "tenant": call.tenant or DEFAULT_TENANT,
        "method": call.method.upper(),
        "url": call.url,
        "query": call.query,
        "body": call.body if call.send_body else None,
        "headers": {
            name.lower(): value
            for name, value in call.headers.items()
            if name.lower() not in UNKEYED_HEADERS
        },
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=repr)
    return CACHE_KEY_PREFIX + hashlib.sha256(text.encode()).hexdigest()


async def cached_result(redis: Redis, call: HttpCall) -> HttpResult | None:
    """`call`'s cached answer, marked `cached` with its age; None on a miss."""
    try:
        raw = await redis.get(cache_key(call))
    except (RedisError, OSError) as exc:
        log.warning("%s: result cache not read, calling: %r", call.label, exc)
        return None
    if raw is None:
        return None
    entry = json.loads(raw)
    result = HttpResult.model_validate(entry["result"])
    result.cached = True
    result.cache_age_seconds = round(max(0.0, time.time() - entry["at"]), 3)
    result.duration_ms = 0
    return result


async def remember(redis: Redis, call: HttpCall, result: HttpResult) -> None:
    """Keep `result` as `call`'s answer for the call's TTL."""
    assert call.cache is not None
    entry = {"at": time.time(), "result": result.model_dump(mode="json", exclude={"stored"})}
    try:
        await redis.set(cache_key(call), json.dumps(entry), ex=call.cache.ttl_seconds)
    except (RedisError, OSError) as exc:
        log.warning("%s: result not cached: %r", call.label, exc)
