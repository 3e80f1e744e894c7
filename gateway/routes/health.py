"""`GET /health`: is the gateway able to reach Temporal and Redis?"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.deps import RedisDep, TemporalClientDep

router = APIRouter(tags=["health"])

PROBE_TIMEOUT_SECONDS = 3.0


@router.get("/health")
async def health(client: TemporalClientDep, redis: RedisDep) -> JSONResponse:
    """200 when Temporal and Redis both answer; 503 naming what is down otherwise."""

    async def probe(check: Callable[[], Awaitable[object]]) -> str:
        try:
            await asyncio.wait_for(check(), PROBE_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - any failure means "down", with its reason
            return f"down: {type(exc).__name__}: {exc}"[:300]
        return "ok"

    temporal, redis_state = await asyncio.gather(
        probe(client.service_client.check_health), probe(redis.ping)
    )
    body = {"temporal": temporal, "redis": redis_state}
    healthy = temporal == "ok" and redis_state == "ok"
    return JSONResponse(
        status_code=200 if healthy else 503,
        content={"status": "ok" if healthy else "degraded", **body},
    )
