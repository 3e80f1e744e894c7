"""The one outbound HTTP layer for every call to a user-supplied URL.

HTTP steps, endpoint calls and webhooks all take URLs from users, and the worker that makes
those calls sits inside our network and serves every run and every tenant through one client.
So the client must not be a way in (server-side request forgery), and it must not carry one
call's secrets to another call, or to a host the call did not name.

One idea per module, in the order a request passes through them:

* `redirects`: `OutboundClient`, the `httpx.AsyncClient` that keeps no cookies and leaves
  credentials, secrets and bodies at their origin when a response redirects elsewhere;
* `transport`: `GuardedTransport`, httpx's own transport, refusing every scheme but http and
  https;
* `pool`: `ShardedPool`, small httpcore connection pools side by side;
* `backend`: `GuardedNetworkBackend`, through which every TCP connection is opened: it
  resolves the host once, has every address checked, and connects to the checked address;
* `policy`: `OutboundPolicy`, the check itself: the default block-list and the deployment's
  allow-list (``OUTBOUND_ALLOW``), pure and I/O-free;
* `body`: `read_capped`, which reads a response's body no further than its cap.

`build_outbound_client`, below, assembles them; the worker builds one client, shared by every
run and tenant.

Failures the activity layer maps through `kernel.errors`:

* `OutboundBlocked`: the destination was refused, or (`RedirectRefused`) a cross-origin
  redirect would have re-sent the body (non-retryable ``OutboundBlocked``);
* `ResponseTooLarge`: the body passed the cap (non-retryable ``ResponseTooLarge``);
* `InvalidUrl`: the URL's scheme is not http or https. It subclasses
  `httpx.UnsupportedProtocol`, so it is handled where httpx's own bad-URL errors are
  (non-retryable ``InvalidRequest``);
* failures to resolve or connect surface as `httpx.ConnectError` / `httpx.ConnectTimeout`,
  like any other transport error (retryable ``TransportError``).

Proxies are never used: a proxy would resolve and connect on our behalf, out of the guard's
sight, so the client ignores ``HTTP_PROXY``/``HTTPS_PROXY``. Nor are ``~/.netrc`` credentials
handed to user-chosen hosts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import httpcore
import httpx

from activities.http.outbound.backend import GuardedNetworkBackend, Resolver
from activities.http.outbound.policy import OutboundPolicy
from activities.http.outbound.redirects import DEFAULT_SENSITIVE_HEADERS, OutboundClient
from activities.http.outbound.transport import GuardedTransport
from kernel.telemetry import instrument_outbound_client

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _header_names(names: Iterable[str]) -> tuple[str, ...]:
    checked = tuple(name.strip() for name in names if name.strip())
    for name in checked:
        if _HEADER_NAME.fullmatch(name) is None:
            raise ValueError(f"invalid sensitive header name {name!r}")
    return checked


def build_outbound_client(
    *,
    allow: Sequence[str] = (),
    sensitive_headers: Sequence[str] = DEFAULT_SENSITIVE_HEADERS,
    max_redirects: int = 5,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    resolver: Resolver | None = None,
    max_connections: int = 100,
    inner_backend: httpcore.AsyncNetworkBackend | None = None,
) -> OutboundClient:
    """Build the shared client for calls to user-supplied URLs.

    Args:
        allow: ``OUTBOUND_ALLOW`` entries exempt from the block-list; the syntax is in
            `activities.http.outbound.policy`.
        sensitive_headers: Key-bearing headers dropped, whatever their case, on a redirect to
            another origin (``OUTBOUND_SENSITIVE_HEADERS``). `CREDENTIAL_HEADERS` are dropped
            too, whatever this says.
        max_redirects: Redirects followed per request; 0 returns redirect responses as they
            are. Each hop is checked like the first request.
        connect_timeout: Seconds to resolve and connect (per hop).
        read_timeout: Seconds to wait for each read, and for each write and for a free
            connection from the pool.
        resolver: Resolves host names; the system resolver by default.
        max_connections: Upper bound on open connections across all hosts.
        inner_backend: The backend that opens the checked sockets (for tests).

    Returns:
        An `OutboundClient` (an `httpx.AsyncClient`); the caller closes it (``async with``).

    Raises:
        ValueError: An allow entry or a header name is invalid, or `max_redirects` is
            negative.
    """
    if max_redirects < 0:
        raise ValueError("max_redirects must be 0 or more")
    backend = GuardedNetworkBackend(OutboundPolicy(allow), resolver=resolver, inner=inner_backend)
    # Every open connection may stay open between calls: with fewer kept alive than may be
    # open, a fan-out past that many calls at once closed and reopened a connection per call.
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=5.0,
    )
    client = OutboundClient(
        transport=GuardedTransport(backend, limits=limits),
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        max_redirects=max_redirects,
        sensitive_headers=_header_names(sensitive_headers),
    )
    # A span per hop and `traceparent` sent with it, when the process has turned tracing on.
    instrument_outbound_client(client)
    return client
