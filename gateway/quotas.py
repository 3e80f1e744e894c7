"""Running-run slots per tenant (`TENANT_MAX_RUNNING_RUNS`), held in Redis and reconciled
against Temporal.

Counting Temporal's visibility store before a start is neither atomic (30 requests at once all
count 0) nor current (visibility lags the start by a second or more), so a tenant could start
far more runs than its limit. Instead every route that starts a run takes a slot first: the
run's Temporal workflow id becomes a member of the tenant's sorted set
`workflow-station:running:<tenant>`, added by a Lua script that refuses when the set is full,
so replicas of the gateway agree and no two requests take the last slot.

A member's score says where it is:

- the time it was taken, while its start is on its way to Temporal (`START_GRACE_SECONDS`);
- `0` once Temporal has the run.

A slot is given back when the gateway sees the run end (a synchronous `POST /execute`, an
endpoint call) or its start fail. Every other run's slot is reconciled: when a tenant's set
is full, the members whose start is done (or whose start is older than the grace, from a
gateway that died mid-start) are described, and those whose run is no longer running, or
was never started, are removed. A crash leaks no slot for longer than that.

While Redis does not answer, the limit falls back to counting Temporal's visibility store
(`limit_running_runs`): approximate, but a Redis outage does not stop runs from starting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from gateway.errors import LimitExceeded
from gateway.tenancy import Tenant, limit_running_runs

log = logging.getLogger("workflow_station.gateway")

SLOTS_PREFIX = "workflow-station:running:"

#: How long a slot whose start has not been confirmed is left alone by reconciliation: a
#: start is one RPC, which the client gives up on well before this.
START_GRACE_SECONDS = 60.0
#: A full tenant is reconciled at most this often per gateway: each reconciliation describes
#: every run the tenant holds a slot for.
RECONCILE_INTERVAL_SECONDS = 0.5
#: Describes of one reconciliation in flight at once.
RECONCILE_CONCURRENCY = 20

_ACQUIRE = """
local fresh = {}
for i = 3, #ARGV do
  if not redis.call('ZSCORE', KEYS[1], ARGV[i]) then table.insert(fresh, ARGV[i]) end
end
if redis.call('ZCARD', KEYS[1]) + #fresh > tonumber(ARGV[1]) then return false end
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i]) end
return fresh
"""

#: Removes a member only if its score is still the one reconciliation read: a member that
#: was taken again meanwhile (the same id started anew) keeps its slot.
_REMOVE_UNCHANGED = """
local removed = 0
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
"""


def slots_key(tenant: Tenant) -> str:
    return f"{SLOTS_PREFIX}{tenant.name}"


class RunSlots:
    """The tenants' running-run slots, for one gateway process."""

    def __init__(self, redis: Redis, client: Client, limit: int) -> None:
        self.redis = redis
        self.client = client
        self.limit = limit
        self._acquire = redis.register_script(_ACQUIRE)
        self._remove_unchanged = redis.register_script(_REMOVE_UNCHANGED)
        self._locks: dict[str, asyncio.Lock] = {}
        self._reconciled_at: dict[str, float] = {}

    @asynccontextmanager
    async def starting(self, tenant: Tenant, workflow_ids: Sequence[str]) -> AsyncIterator[None]:
        """Hold a slot for each run while it starts; given back if the start fails.

        Raises:
            LimitExceeded: the tenant would pass its limit (429 with `Retry-After`).
        """
        if self.limit <= 0:
            yield
            return
        try:
            taken = await self._take(tenant, workflow_ids)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning(
                "running runs of tenant %r counted by Temporal: Redis is not answering (%s)",
                tenant.name,
                exc,
            )
            await limit_running_runs(self.client, tenant, self.limit, len(workflow_ids))
            yield
            return
        try:
            yield
        except BaseException:
            await self._give_back(tenant, taken)
            raise
        await self._confirm(tenant, workflow_ids)

    async def release(self, tenant: Tenant, workflow_ids: Sequence[str]) -> None:
        """Give back the slots of runs the gateway saw end."""
        if self.limit > 0:
            await self._give_back(tenant, list(workflow_ids))

    async def _take(self, tenant: Tenant, workflow_ids: Sequence[str]) -> list[str]:
        for attempt in range(2):
            taken = await self._acquire(
                keys=[slots_key(tenant)], args=[self.limit, time.time(), *workflow_ids]
            )
            if taken is not None:
                return [member.decode() for member in taken]
            if attempt == 0:
                await self._reconcile(tenant)
        raise LimitExceeded(
            f"tenant {tenant.name!r} has as many runs going as it may: at most {self.limit}"
            " may run at once (TENANT_MAX_RUNNING_RUNS)",
            headers={"Retry-After": "5"},
        )

    async def _confirm(self, tenant: Tenant, workflow_ids: Sequence[str]) -> None:
        with _unless_redis_is_down(tenant):
            await self.redis.zadd(slots_key(tenant), dict.fromkeys(workflow_ids, 0), xx=True)

    async def _give_back(self, tenant: Tenant, workflow_ids: list[str]) -> None:
        if workflow_ids:
            with _unless_redis_is_down(tenant):
                await self.redis.zrem(slots_key(tenant), *workflow_ids)

    async def _reconcile(self, tenant: Tenant) -> None:
        """Remove the slots of runs that are no longer running; one at a time per tenant."""
        lock = self._locks.setdefault(tenant.name, asyncio.Lock())
        async with lock:
            last = self._reconciled_at.get(tenant.name, 0.0)
            if time.monotonic() - last < RECONCILE_INTERVAL_SECONDS:
                return
            settled = cast(
                list[tuple[bytes, float]],
                await self.redis.zrangebyscore(
                    slots_key(tenant), "-inf", time.time() - START_GRACE_SECONDS, withscores=True
                ),
            )
            gate = asyncio.Semaphore(RECONCILE_CONCURRENCY)

            async def running(member: bytes) -> bool:
                async with gate:
                    return await self._is_running(member.decode())

            states = await asyncio.gather(*(running(member) for member, _ in settled))
            ended = [
                value
                for (member, score), still in zip(settled, states, strict=True)
                if not still
                for value in (member, score)
            ]
            if ended:
                await self._remove_unchanged(keys=[slots_key(tenant)], args=ended)
            self._reconciled_at[tenant.name] = time.monotonic()

    async def _is_running(self, workflow_id: str) -> bool:
        try:
            description = await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            # Never started (a gateway died before its start reached Temporal): no run.
            # Any other failure keeps the slot; the next reconciliation asks again.
            return exc.status != RPCStatusCode.NOT_FOUND
        return description.status == WorkflowExecutionStatus.RUNNING


@contextmanager
def _unless_redis_is_down(tenant: Tenant) -> Iterator[None]:
    """Updating a slot is best effort: reconciliation frees a slot left behind."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as exc:
        log.warning(
            "slots of tenant %r not updated: Redis is not answering (%s); reconciliation"
            " frees them later",
            tenant.name,
            exc,
        )
