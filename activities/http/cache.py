"""The result cache of HTTP calls (`HttpCall.cache`, entries in `activities.store.cache`).

The key is the call as scheduled, its `{{secrets.…}}` placeholders not yet filled in, so no
secret value is hashed and a rotated secret still hits; headers that never change the answer
(the idempotency key, trace context) are left out of it.
"""

from __future__ import annotations

from redis.asyncio import Redis

from activities.http.models import IDEMPOTENCY_KEY_HEADER, HttpCall, HttpResult
from activities.store.cache import cache_key, keep_answer, read_answer

#: Headers (lower-cased) that differ between identical requests without changing the answer.
UNKEYED_HEADERS = frozenset(
    {IDEMPOTENCY_KEY_HEADER.lower(), "traceparent", "tracestate", "baggage", "x-request-id"}
)


def _key(call: HttpCall) -> str:
    content = {
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
    return cache_key(call.tenant, "http", content)


async def cached_result(redis: Redis, call: HttpCall) -> HttpResult | None:
    """`call`'s cached answer, marked `cached` with its age; None on a miss."""
    answer = await read_answer(redis, _key(call), call.label)
    if answer is None:
        return None
    result = HttpResult.model_validate(answer.value)
    result.cached, result.cache_age_seconds, result.duration_ms = True, answer.age_seconds, 0
    return result


async def remember(redis: Redis, call: HttpCall, result: HttpResult) -> None:
    """Keep `result` as `call`'s answer for the call's TTL."""
    assert call.cache is not None
    value = result.model_dump(mode="json", exclude={"stored"})
    await keep_answer(redis, _key(call), value, call.cache.ttl_seconds, call.label)
