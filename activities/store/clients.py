"""Closing a Redis client for good.

After `aclose()` a redis-py pool still lists its closed connections, and its finalizer then
imports redis modules in whichever thread the garbage collector runs: when that is a workflow
sandbox's thread, the sandbox imports redis afresh and warns. Forgetting the connections at
close leaves the finalizer nothing to do.
"""

from __future__ import annotations

from redis.asyncio import Redis


async def close_redis(redis: Redis) -> None:
    await redis.aclose()
    redis.connection_pool.reset()  # type: ignore[no-untyped-call]
