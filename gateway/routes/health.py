"""Health for orchestrators and load balancers.

- `GET /health/live`: the process answers (no dependency is asked). A failing liveness probe
  restarts the gateway, which would not bring Temporal or Redis back, so it asks neither.
- `GET /health/ready`: Temporal and Redis answer, and a worker polls every task queue the
  gateway starts runs on (`TASK_QUEUE` and the `ENDPOINT_WORKERS` queues, their workflow and
  activity tasks; see `gateway/workers.py`). 503 names what is missing, so traffic goes to
  a gateway whose runs would start, and an operator sees which worker to start.
- `GET /health`: the same as `/health/ready`, for existing users.

Probes come without a key, so what is down is said without why to them: the exception text
names internal hosts and ports. A caller with a tenant's key (or any caller of an open
gateway, which answers on loopback only) reads the reasons too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from temporalio.client import Client

from gateway.deps import RedisDep, SettingsDep, TemporalClientDep
from gateway.tenancy import keyed_tenant
from gateway.workers import unserved_queues

router = APIRouter(tags=["health"])

PROBE_TIMEOUT_SECONDS = 3.0
#: A readiness answer is reused this long: probes from several orchestrators, replicas and
#: load balancers then cost Temporal one check (a dozen RPCs) a second, however many come.
READY_CACHE_SECONDS = 1.0

Report = tuple[bool, dict[str, Any]]


class ReadinessCache:
    """The last readiness report, reused for `READY_CACHE_SECONDS`; concurrent probes wait
    for the one check in flight instead of starting their own."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._report: Report | None = None
        self._checked_at = 0.0

    async def get(self, check: Callable[[], Awaitable[Report]]) -> Report:
        async with self._lock:
            fresh = time.monotonic() - self._checked_at < READY_CACHE_SECONDS
            if self._report is None or not fresh:
                self._report = await check()
                self._checked_at = time.monotonic()
            return self._report


async def get_readiness_cache(request: Request) -> ReadinessCache:
    state = request.app.state
    if not hasattr(state, "readiness"):
        state.readiness = ReadinessCache()
    cache: ReadinessCache = state.readiness
    return cache


ReadinessCacheDep = Annotated[ReadinessCache, Depends(get_readiness_cache)]


@router.get("/health/live")
async def live() -> dict[str, str]:
    """200 while the process answers."""
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(
    request: Request,
    client: TemporalClientDep,
    redis: RedisDep,
    settings: SettingsDep,
    cache: ReadinessCacheDep,
) -> JSONResponse:
    """200 when Temporal and Redis answer and a worker polls every task queue runs start on;
    503 naming what is down, or the queues no worker polls, otherwise."""
    queues = list(dict.fromkeys([settings.task_queue, *settings.endpoint_workers]))
    healthy, body = await cache.get(lambda: _check(client, redis, queues))
    if request.app.state.api_keys and keyed_tenant(request) is None:
        body = _without_reasons(body)
    return JSONResponse(
        status_code=200 if healthy else 503,
        content={"status": "ok" if healthy else "degraded", **body},
    )


@router.get("/health")
async def health(
    request: Request,
    client: TemporalClientDep,
    redis: RedisDep,
    settings: SettingsDep,
    cache: ReadinessCacheDep,
) -> JSONResponse:
    """The same as `/health/ready`."""
    return await ready(request, client, redis, settings, cache)


def _without_reasons(body: dict[str, Any]) -> dict[str, Any]:
    """`down: ConnectionError: … 10.0.3.7:6379 …` becomes `down` (and `unknown: …`,
    `unknown`)."""

    def state(text: str) -> str:
        return text.split(":", 1)[0] if text.startswith(("down:", "unknown:")) else text

    return {
        key: {queue: state(value) for queue, value in item.items()}
        if isinstance(item, dict)
        else state(item)
        for key, item in body.items()
    }


async def _probe(check: Callable[[], Awaitable[object]]) -> str:
    try:
        await asyncio.wait_for(check(), PROBE_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any failure means "down", with its reason
        return f"down: {type(exc).__name__}: {exc}"[:300]
    return "ok"


async def _check(client: Client, redis: Redis, queues: list[str]) -> Report:
    unserved: dict[str, list[str]] = {}

    async def pollers() -> None:
        unserved.update(await unserved_queues(client, queues))

    temporal, redis_state, pollers_state = await asyncio.gather(
        _probe(client.service_client.check_health), _probe(redis.ping), _probe(pollers)
    )
    task_queues = {
        queue: _queue_state(unserved[queue])
        if pollers_state == "ok"
        else f"unknown: {pollers_state}"
        for queue in queues
    }
    healthy = temporal == redis_state == "ok" and all(
        state == "ok" for state in task_queues.values()
    )
    return healthy, {"temporal": temporal, "redis": redis_state, "task_queues": task_queues}


def _queue_state(missing: list[str]) -> str:
    if not missing:
        return "ok"
    return f"no worker polls its {' and '.join(missing)} tasks"
