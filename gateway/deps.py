"""Typed dependencies: the one Temporal client and Redis client opened by the lifespan, the
run-status reader over that client, the reader of runs' large values, and who may use the
codec endpoint.

Every dependency is `async def`, though none awaits: FastAPI runs a plain `def` dependency in
its thread pool, one thread hop for each of a request's dependencies, which under load
showed as a sixth of the gateway's time on `GET /runs/{id}` (py-spy, bench/dag.py
--status-only)."""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from temporalio.client import Client

from gateway.errors import Forbidden, NotAuthenticated
from gateway.events import SharedPolls
from gateway.quotas import RunSlots
from gateway.runs.reads import StatusReads
from gateway.runs.service import RunStatusService
from gateway.stream_slots import StreamSlots
from gateway.tenancy import TenantDep, limit_request_rate
from gateway.values import RunValueService
from settings import Settings


async def get_client(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


async def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


TemporalClientDep = Annotated[Client, Depends(get_client)]
RedisDep = Annotated[Redis, Depends(get_redis)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_status_reads(request: Request) -> StatusReads:
    reads: StatusReads = request.app.state.status_reads
    return reads


async def get_run_status(
    client: TemporalClientDep,
    tenant: TenantDep,
    reads: Annotated[StatusReads, Depends(get_status_reads)],
    redis: RedisDep,
    settings: SettingsDep,
) -> RunStatusService:
    fresh = settings.status_fresh_seconds if settings.publishes_status else 0.0
    fresh_for = timedelta(seconds=fresh)
    return RunStatusService(client, tenant, reads, redis, fresh_for)


RunStatusDep = Annotated[RunStatusService, Depends(get_run_status)]


async def get_run_values(runs: RunStatusDep, redis: RedisDep, request: Request) -> RunValueService:
    return RunValueService(runs, redis, request.app.state.payload_codec)


RunValuesDep = Annotated[RunValueService, Depends(get_run_values)]


async def get_run_slots(request: Request) -> RunSlots:
    slots: RunSlots = request.app.state.run_slots
    return slots


RunSlotsDep = Annotated[RunSlots, Depends(get_run_slots)]


async def get_stream_slots(request: Request) -> StreamSlots:
    slots: StreamSlots = request.app.state.stream_slots
    return slots


StreamSlotsDep = Annotated[StreamSlots, Depends(get_stream_slots)]


async def get_shared_polls(request: Request) -> SharedPolls:
    polls: SharedPolls = request.app.state.shared_polls
    return polls


SharedPollsDep = Annotated[SharedPolls, Depends(get_shared_polls)]


async def require_codec_access(request: Request, settings: SettingsDep) -> None:
    """Who may encrypt and decrypt through `/codec`: it reads every payload in plain text.

    With CODEC_AUTH_TOKEN set, a request must carry `Authorization: Bearer <token>` (compared
    in constant time). Without it, the endpoint answers only on a gateway bound to loopback,
    where the Web UI of `make dev` calls it from the same machine.

    Its requests are metered (CODEC_REQUESTS_PER_SECOND, all callers together): each is a
    round of AES, and a token guessed at speed is a token guessed.

    Raises:
        LimitExceeded: past the rate (429).
        NotAuthenticated: without the right token.
        Forbidden: when no token is set and the gateway listens beyond loopback.
    """
    redis: Redis = request.app.state.redis
    await limit_request_rate(
        redis,
        "codec",
        settings.codec_requests_per_second,
        "the codec endpoint",
        "CODEC_REQUESTS_PER_SECOND",
    )
    token = settings.codec_auth_token
    if token is None:
        if settings.gateway_on_loopback:
            return
        raise Forbidden(
            "the codec endpoint is off on a gateway not bound to loopback until"
            " CODEC_AUTH_TOKEN is set",
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise NotAuthenticated(
            "the codec endpoint needs Authorization: Bearer <CODEC_AUTH_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )
