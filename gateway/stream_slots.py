"""Open event streams per tenant (`TENANT_MAX_EVENT_STREAMS`), counted in Redis across
gateway replicas.

Each open `GET /runs/{id}/events` holds a member of `workflow-station:streams:<tenant>`,
scored with the time it last said it was alive. A stream refreshes its member while it runs
and removes it when it closes; a gateway that dies leaves members that stop being refreshed,
and they stop counting `STALE_SECONDS` later. Only the request that opens a stream is
rate-limited, so without this a tenant could hold any number of them open, each polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.errors import LimitExceeded
from gateway.tenancy import Tenant

log = logging.getLogger("workflow_station.gateway")

STREAMS_PREFIX = "workflow-station:streams:"
#: How often an open stream says it is alive.
REFRESH_SECONDS = 10.0
#: A stream not heard of for this long (its gateway died) no longer counts.
STALE_SECONDS = 3 * REFRESH_SECONDS

_OPEN = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])))
return 1
"""

_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)


class StreamSlots:
    """The tenants' open event streams, for one gateway process."""

    def __init__(self, redis: Redis, limit: int) -> None:
        self.redis = redis
        self.limit = limit
        self._open = redis.register_script(_OPEN)

    async def open(self, tenant: Tenant) -> str | None:
        """A slot for one more stream (its id), or None when unmetered (no limit, no Redis).

        Raises:
            LimitExceeded: the tenant has `limit` streams open (429 with `Retry-After`).
        """
        if self.limit <= 0:
            return None
        slot = uuid.uuid4().hex
        try:
            taken = await self._open(
                keys=[self._key(tenant)], args=[self.limit, time.time(), STALE_SECONDS, slot]
            )
        except _REDIS_DOWN as exc:
            log.warning(
                "event streams of %r not counted: Redis is not answering (%s)", tenant.name, exc
            )
            return None
        if not taken:
            raise LimitExceeded(
                f"tenant {tenant.name!r} has {self.limit} event streams open; close one first"
                " (TENANT_MAX_EVENT_STREAMS)",
                headers={"Retry-After": "5"},
            )
        return slot

    async def held(
        self, tenant: Tenant, slot: str | None, events: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        """`events`, the slot kept alive while the stream is open (quiet or not) and given
        back when it ends, the client closing it included."""
        keeper = asyncio.create_task(self._keep_alive(tenant, slot)) if slot else None
        try:
            async for event in events:
                yield event
        finally:
            if keeper is not None:
                keeper.cancel()
            if slot is not None:
                with contextlib.suppress(*_REDIS_DOWN):  # else it goes stale instead
                    await self.redis.zrem(self._key(tenant), slot)

    async def _keep_alive(self, tenant: Tenant, slot: str) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            await self._refresh(tenant, slot)

    async def _refresh(self, tenant: Tenant, slot: str) -> None:
        with contextlib.suppress(*_REDIS_DOWN):  # counted as alive until it goes stale
            await self.redis.zadd(self._key(tenant), {slot: time.time()}, xx=True)
            await self.redis.expire(self._key(tenant), int(STALE_SECONDS))

    @staticmethod
    def _key(tenant: Tenant) -> str:
        return f"{STREAMS_PREFIX}{tenant.name}"
