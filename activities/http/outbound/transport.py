"""The outbound transport: httpx's own, over the sharded pool and the guarded backend, refusing
every scheme but http and https and every redirect the client marked as refused."""

from __future__ import annotations

import httpcore
import httpx

from activities.http.outbound.backend import GuardedNetworkBackend
from activities.http.outbound.pool import CONNECTIONS_PER_SHARD, ShardedPool
from activities.http.outbound.redirects import REFUSED_REDIRECT, RedirectRefused

ALLOWED_SCHEMES = frozenset({"http", "https"})


class InvalidUrl(httpx.UnsupportedProtocol):
    """A URL whose scheme the outbound client refuses to fetch (anything but http/https).

    Attributes:
        url: The URL as given.
    """

    def __init__(self, url: str, message: str, *, request: httpx.Request | None = None) -> None:
        self.url = url
        super().__init__(message, request=request)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, with its connection pool rebuilt around the guarded backend.

    httpx 0.28 has no public way to hand a network backend to `AsyncHTTPTransport`, but the
    transport only talks to `self._pool`; replacing it keeps httpx's request/response mapping
    and its httpcore-to-httpx exception mapping, which are private and would otherwise have
    to be copied. The pool is sharded (`ShardedPool`).
    """

    def __init__(self, backend: GuardedNetworkBackend, *, limits: httpx.Limits) -> None:
        ssl_context = httpx.create_ssl_context()
        super().__init__(verify=ssl_context, limits=limits, http1=True, http2=False, retries=0)
        total = limits.max_connections or CONNECTIONS_PER_SHARD
        shards = max(1, -(-total // CONNECTIONS_PER_SHARD))
        self._pool = ShardedPool(  # type: ignore[assignment]
            [
                httpcore.AsyncConnectionPool(
                    ssl_context=ssl_context,
                    # `total` spread over the shards, the first ones taking the remainder.
                    max_connections=total // shards + (shard < total % shards),
                    max_keepalive_connections=total // shards + (shard < total % shards),
                    keepalive_expiry=limits.keepalive_expiry,
                    http1=True,
                    http2=False,
                    # Temporal owns retries; a transport retry would hide failures from its
                    # policy.
                    retries=0,
                    network_backend=backend,
                )
                for shard in range(shards)
            ]
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        refused = request.extensions.get(REFUSED_REDIRECT)
        if isinstance(refused, RedirectRefused):
            raise refused
        # Checked here rather than before sending so that redirect hops are checked too;
        # httpcore alone would also accept ws:// and wss://.
        scheme = request.url.scheme
        if scheme not in ALLOWED_SCHEMES:
            raise InvalidUrl(
                str(request.url),
                f"refused {request.url}: scheme {scheme!r} is not allowed, only http and https",
                request=request,
            )
        return await super().handle_async_request(request)
