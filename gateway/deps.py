"""Typed dependencies: the one Temporal client and Redis client opened by the lifespan, the
run-status reader over that client and the reader of runs' large values."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from temporalio.client import Client

from gateway.runs import RunStatusService
from gateway.tenancy import TenantDep
from gateway.values import RunValueService
from settings import Settings


def get_client(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


TemporalClientDep = Annotated[Client, Depends(get_client)]
RedisDep = Annotated[Redis, Depends(get_redis)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_run_status(client: TemporalClientDep, tenant: TenantDep) -> RunStatusService:
    return RunStatusService(client, tenant)


RunStatusDep = Annotated[RunStatusService, Depends(get_run_status)]


def get_run_values(runs: RunStatusDep, redis: RedisDep) -> RunValueService:
    return RunValueService(runs, redis)


RunValuesDep = Annotated[RunValueService, Depends(get_run_values)]
