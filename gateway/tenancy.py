"""Who is calling: tenants and their API keys, their run ids, and their fair share.

With `GATEWAY_API_KEYS` set (`tenant:key` pairs), every route but `/health` needs
`Authorization: Bearer <key>`, and a tenant sees only its own runs: the Temporal workflow id
of a run is `<tenant>/<id>`, so another tenant's id is simply not found (404), and the same
client-chosen id in two tenants is two runs. Keys are kept only as SHA-256 digests and
compared in constant time. With no keys the gateway is open, as tenant `default` with ids as
clients chose them, and `create_app` refuses to serve anything but loopback that way.

Fair use holds across gateway replicas: requests per second per tenant are counted in Redis
(while it answers: an outage leaves requests unmetered rather than refused), and running runs
per tenant hold slots in Redis, reconciled against Temporal (`gateway.quotas`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from temporalio.client import Client

from gateway.errors import Forbidden, LimitExceeded, NotAuthenticated
from kernel.search import TENANT
from settings import Settings

log = logging.getLogger("workflow_station.gateway")

OPEN_TENANT = "default"


@dataclass(frozen=True)
class Tenant:
    """The caller. `scoped`: its runs' Temporal ids carry its name (keys are configured)."""

    name: str
    scoped: bool = True

    def workflow_id(self, client_id: str) -> str:
        """The Temporal workflow id of the run this tenant calls `client_id`."""
        return f"{self.name}/{client_id}" if self.scoped else client_id

    def client_id(self, workflow_id: str) -> str:
        """The id this tenant knows a run by, from its Temporal workflow id."""
        return workflow_id.removeprefix(f"{self.name}/") if self.scoped else workflow_id

    @property
    def redis_scope(self) -> str | None:
        """What prefixes this tenant's Redis keys (None: the open gateway's unprefixed keys)."""
        return self.name if self.scoped else None


class ApiKeys:
    """`tenant:key` pairs, held as digests; `tenant_for` answers in constant time per key."""

    def __init__(self, entries: list[str]) -> None:
        self._digests: list[tuple[bytes, str]] = []
        for entry in entries:
            tenant, _, key = entry.partition(":")
            self._digests.append((_digest(key), tenant))

    def __bool__(self) -> bool:
        return bool(self._digests)

    def tenant_for(self, presented: str) -> str | None:
        digest = _digest(presented)
        found = None
        for known, tenant in self._digests:
            # Every entry is compared, so the time taken says nothing about which matched.
            if hmac.compare_digest(known, digest):
                found = tenant
        return found


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def refuse_open_exposure(settings: Settings) -> None:
    """Like Redis's protected mode: no keys, then loopback only."""
    if not settings.gateway_api_keys and not settings.gateway_on_loopback:
        raise RuntimeError(
            f"GATEWAY_HOST={settings.gateway_host} is not a loopback address and"
            " GATEWAY_API_KEYS is empty: anyone who can reach the gateway could run anything."
            " Set GATEWAY_API_KEYS=tenant:key[,tenant:key…], or bind to 127.0.0.1"
        )


def keyed_tenant(request: Request) -> str | None:
    """The tenant whose key the request's `Authorization: Bearer` carries, if any."""
    keys: ApiKeys = request.app.state.api_keys
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return keys.tenant_for(token.strip()) if scheme.lower() == "bearer" else None


def arrived_on_loopback(request: Request) -> bool:
    """Whether the request came in on a loopback address of this machine: the address the
    socket is actually bound to (uvicorn's `--host`, a container's port mapping), whatever
    GATEWAY_HOST says."""
    server = request.scope.get("server")
    if not server:
        return True  # a Unix socket: only this machine reaches it
    try:
        return ipaddress.ip_address(str(server[0]).strip("[]")).is_loopback
    except ValueError:
        return False


def refuse_beyond_loopback(request: Request) -> None:
    """The open gateway's guard on each request: `refuse_open_exposure` reads GATEWAY_HOST,
    which need not be what the process was bound to (`uvicorn --host 0.0.0.0` with the
    default setting)."""
    if not arrived_on_loopback(request):
        raise Forbidden(
            "this gateway has no GATEWAY_API_KEYS and answers on loopback only; it was"
            " reached on another address. Set GATEWAY_API_KEYS=tenant:key[,tenant:key…]"
        )


async def get_tenant(request: Request) -> Tenant:
    """The authenticated tenant (401 without a valid key), within its request rate (429)."""
    keys: ApiKeys = request.app.state.api_keys
    if not keys:
        refuse_beyond_loopback(request)
        tenant = Tenant(OPEN_TENANT, scoped=False)
    else:
        name = keyed_tenant(request)
        if name is None:
            raise NotAuthenticated(
                "a valid API key is required: Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        tenant = Tenant(name)
    settings: Settings = request.app.state.settings
    redis: Redis = request.app.state.redis
    await limit_request_rate(
        redis,
        f"tenant:{tenant.name}",
        settings.tenant_requests_per_second,
        f"tenant {tenant.name!r}",
        "TENANT_REQUESTS_PER_SECOND",
    )
    return tenant


TenantDep = Annotated[Tenant, Depends(get_tenant)]


async def limit_request_rate(
    redis: Redis, meter: str, per_second: float, who: str, setting: str
) -> None:
    """A fixed one-second window per `meter` (`tenant:<name>`, `codec`), shared by every
    gateway replica through Redis; `who` and `setting` name it in the 429."""
    if per_second <= 0:
        return
    now = time.time()
    key = f"workflow-station:rate:{meter}:{int(now)}"
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 2)
            count, _ = await pipe.execute()
    except (RedisConnectionError, RedisTimeoutError) as exc:
        # The meter must not take the API down with it: runs live in Temporal, and reading
        # their status or starting one needs no Redis. Unmetered until Redis answers again.
        log.warning("request rate of %s not checked: Redis is not answering (%s)", who, exc)
        return
    if count > per_second:
        retry = max(1, math.ceil(int(now) + 1 - now))
        raise LimitExceeded(
            f"{who} sent more than {per_second:g} requests in a second ({setting})",
            headers={"Retry-After": str(retry)},
        )


async def limit_running_runs(client: Client, tenant: Tenant, limit: int, starting: int) -> None:
    """Refuse to start `starting` more runs when the tenant would pass `limit` running, as
    Temporal's visibility store counts them: not atomic and a moment behind, so only the
    fallback of `gateway.quotas` while Redis does not answer."""
    if limit <= 0:
        return
    running = await client.count_workflows(
        f"{TENANT.name} = '{tenant.name}' AND ExecutionStatus = 'Running'"
    )
    if running.count + starting > limit:
        raise LimitExceeded(
            f"tenant {tenant.name!r} has {running.count} runs going; at most {limit} may run at"
            " once (TENANT_MAX_RUNNING_RUNS)",
            headers={"Retry-After": "5"},
        )
