"""The result cache of HTTP calls (`HttpCall.cache`, entries in `activities.store.cache`).

The key is the call as scheduled, its `{{secrets.…}}` placeholders not yet filled in, so no
secret value is hashed and a rotated secret still hits; headers that never change the answer
(the idempotency key, trace context) are left out of it.
"""

from __future__ import annotations

from redis.asyncio import Redis

from activities.http.models import HttpCall, HttpResult, http_cache_key
from activities.store.cache import keep_answer, read_answer


async def cached_result(redis: Redis, call: HttpCall) -> HttpResult | None:
    """`call`'s cached answer, marked `cached` with its age; None on a miss."""
    answer = await read_answer(redis, http_cache_key(call), call.label)
    if answer is None:
        return None
    result = HttpResult.model_validate(answer.value)
    result.cached, result.cache_age_seconds, result.duration_ms = True, answer.age_seconds, 0
    return result


async def remember(redis: Redis, call: HttpCall, result: HttpResult) -> None:
    """Keep `result` as `call`'s answer for the call's TTL."""
    assert call.cache is not None
    value = result.model_dump(mode="json", exclude={"stored", "request_key"})
    await keep_answer(redis, http_cache_key(call), value, call.cache.ttl_seconds, call.label)
