"""The network backend every outbound TCP connection is opened through, guarded.

Without a guard, a URL is a way to reach what only the worker can reach: the cloud metadata
service at 169.254.169.254 (instance credentials), Redis and the Temporal frontend on
loopback, admin ports on private subnets. Checking the URL's host name up front is not enough:

* the name can resolve to a public address when checked and to a private one when the socket
  is opened a moment later (DNS rebinding);
* a public URL can answer with a redirect to an internal one;
* addresses hide behind other spellings (``http://2130706433/``, ``http://[::ffff:10.0.0.1]/``,
  NAT64 ``64:ff9b::a00:1``).

So the check lives in the network backend that httpcore opens every TCP connection through,
including the connection of every redirect hop: `GuardedNetworkBackend.connect_tcp` resolves
the host once, refuses the connection if *any* resolved address is in a blocked range, and then
connects to the checked IP literal, never to the name again. TLS still verifies the certificate
against, and sends SNI for, the URL's host name, because httpcore calls
``stream.start_tls(server_hostname=<url host>)`` separately after `connect_tcp` returns.
"""

from __future__ import annotations

import contextlib
import socket
import typing
from typing import Protocol

import anyio
import httpcore

from activities.http.outbound.policy import OutboundBlocked, OutboundPolicy, parse_ip


class Resolver(Protocol):
    """Turns a host name into the IP addresses to try, in order."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """Resolve `host`.

        Args:
            host: A host name (never an IP literal; those are not resolved).
            port: The port that will be connected to.

        Returns:
            IP address strings, in the order they should be tried.

        Raises:
            OSError: The name does not resolve (e.g. `socket.gaierror`).
        """
        ...


class SystemResolver:
    """The operating system's resolver (getaddrinfo, run off the event loop by anyio)."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """Resolve `host` with getaddrinfo; see `Resolver.resolve`."""
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [sockaddr[0] for *_, sockaddr in infos]


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that checks every address before connecting to it.

    Args:
        policy: What is blocked and allowed.
        resolver: Resolves host names; the system resolver by default.
        inner: The backend that really connects; `httpcore.AnyIOBackend` by default. Tests
            inject a recording fake here.
    """

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.resolver: Resolver = resolver or SystemResolver()
        self.inner: httpcore.AsyncNetworkBackend = inner or httpcore.AnyIOBackend()

    async def _resolve(self, host: str, port: int) -> list[str]:
        literal = parse_ip(host)
        if literal is not None:
            return [str(literal)]
        try:
            found = await self.resolver.resolve(host, port)
        except OSError as exc:
            # A DNS failure is a transport failure like any other: worth retrying.
            raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from exc
        if not found:
            raise httpcore.ConnectError(f"could not resolve {host}: no addresses")
        return list(dict.fromkeys(found))

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve `host`, check every address, then connect to the first one that answers.

        Raises:
            OutboundBlocked: Any resolved address is refused by the policy. Refusing the whole
                name, rather than skipping the bad address, keeps an attacker's DNS from
                steering the fallback order into an internal address.
            httpcore.ConnectError: Resolution or every connection attempt failed.
            httpcore.ConnectTimeout: Resolution and connecting took longer than `timeout`.
        """
        try:
            # One deadline for resolving and connecting, as anyio.connect_tcp has when it is
            # given a name; without it a slow resolver would add to the connect timeout.
            with anyio.fail_after(timeout):
                addresses = await self._resolve(host, port)
                for address in addresses:
                    self.policy.check(host, address, port)
                # Fall back to the next address only on a refused/unreachable connection; the
                # last address's error is the one reported.
                for address in addresses[:-1]:
                    with contextlib.suppress(httpcore.ConnectError):
                        return await self.inner.connect_tcp(
                            address,
                            port,
                            timeout=timeout,
                            local_address=local_address,
                            socket_options=socket_options,
                        )
                return await self.inner.connect_tcp(
                    addresses[-1],
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Always refused: a Unix socket is local by definition."""
        raise OutboundBlocked(path, None, "Unix domain sockets are never allowed")

    async def sleep(self, seconds: float) -> None:
        """Delegate to the inner backend."""
        await self.inner.sleep(seconds)
