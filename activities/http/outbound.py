"""The one outbound HTTP layer for every call to a user-supplied URL.

HTTP steps, endpoint calls and webhooks all take URLs from users, and the worker that makes
those calls sits inside our network and serves every run and every tenant through one client.
So the client must not be a way in (server-side request forgery), and it must not carry one
call's secrets to another call, or to a host the call did not name.

Destinations
------------
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

Blocked by default (see `blocked_reason`): loopback, private (RFC 1918, IPv6 unique local
fc00::/7), link-local (169.254.0.0/16, fe80::/10), carrier-grade NAT 100.64.0.0/10, multicast,
unspecified, broadcast and other reserved ranges, and IPv6 forms that embed an IPv4 address
(IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96, 6to4) when the embedded address is blocked.

The allow-list (``OUTBOUND_ALLOW``, ``Settings.outbound_allow``) opens holes for deployments
that must call internal services. `parse_allow_list` reads it strictly when the settings load,
so a bad entry stops the worker at start instead of silently meaning something else. Each
entry is one of

* an IP address or CIDR network (``10.0.0.5``, ``10.1.0.0/16``, ``::1``, ``fd00::/8``): an
  address inside it is allowed whatever name led to it. A network must not have host bits set:
  ``10.0.0.5/0`` is refused, not read as ``0.0.0.0/0``;
* a host name (``billing.internal``), matched exactly and case-insensitively against the URL's
  host (a trailing dot is ignored): every address that name resolves to is then allowed. Labels
  are letters, digits, hyphens and underscores (internationalized names are taken in their
  ``xn--`` form); a name whose last label is a number (``127.1``, ``2130706433``) spells an IP
  address and is refused;
* ``*.suffix`` (``*.svc.cluster.local``): every host name that ends in ``.suffix``, at any
  depth, but not ``suffix`` itself;

each optionally followed by ``:port`` (``billing.internal:8443``, ``10.0.0.0/8:8080``,
``[::1]:8080``; an IPv6 address or network takes a port only inside brackets), which opens the
hole on that port only. Anything else raises `ValueError` naming the entry and what is wrong.

Cookies and redirects
---------------------
The client keeps no cookies. Its jar drops every cookie a response sets, so run A's
``Set-Cookie: sid=…`` is never sent with run B's call, with a webhook delivery, or even with
the next redirect hop of the same call. A ``Cookie`` header the call sets itself is sent.

Redirects are followed up to ``OUTBOUND_MAX_REDIRECTS`` times, each hop checked as above. A hop
to the same origin (scheme, host and port all equal) keeps the request as it was, the call's
own ``Cookie`` header included. A hop to another origin, http to https on the same host too:

* drops ``Authorization``, ``Cookie`` and ``Proxy-Authorization`` (`CREDENTIAL_HEADERS`,
  always) and the key-bearing headers of ``OUTBOUND_SENSITIVE_HEADERS`` (by default
  `DEFAULT_SENSITIVE_HEADERS`: ``X-API-Key``, ``Api-Key``, ``X-Api-Token``, ``X-Auth-Token``,
  ``X-Access-Token``, ``X-Goog-Api-Key``, ``Private-Token``, ``Ocp-Apim-Subscription-Key``),
  whatever their case, and every header whose value came from a ``{{secrets.NAME}}`` (the
  HTTP activity names them in the request's `SECRET_HEADERS` extension). Once dropped they
  stay dropped, even if a later hop comes back;
* never carries the request body. A 302 or 303, and a 301 answering a POST, become a bodiless
  GET, as in browsers. A redirect that would re-send the body to the other origin (a 307 or
  308, or a 301 answering a PUT, PATCH or DELETE) is not followed: it fails with
  `RedirectRefused`. Following it would hand the body to a host the call never named, and
  dropping the body would quietly send a different request from the one the call describes;
  the error names both origins, so the step's URL can be updated to the new one.

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

import contextlib
import http.cookiejar
import ipaddress
import re
import socket
import typing
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import anyio
import httpcore
import httpx
import idna

from kernel.errors import ErrorType, WorkflowStationError
from kernel.telemetry import instrument_outbound_client

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})

#: Dropped from every redirect to another origin, whatever the settings say.
CREDENTIAL_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")

#: Headers that carry API keys by convention (``OUTBOUND_SENSITIVE_HEADERS``' default); dropped
#: from every redirect to another origin, like `CREDENTIAL_HEADERS`.
DEFAULT_SENSITIVE_HEADERS = (
    "X-API-Key",
    "Api-Key",
    "X-Api-Token",
    "X-Auth-Token",
    "X-Access-Token",
    "X-Goog-Api-Key",
    "Private-Token",
    "Ocp-Apim-Subscription-Key",
)


class OutboundBlocked(WorkflowStationError):
    """A destination the outbound guard refused to connect to.

    Attributes:
        host: The host name (or IP literal) from the URL.
        address: The resolved address that was refused, or None when no address was involved.
        reason: Why, e.g. ``"link-local address"``.
    """

    error_type = ErrorType.OUTBOUND_BLOCKED

    def __init__(self, host: str, address: str | None, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        if address is None:
            message = f"refused {host}: {reason}"
        elif address == host:
            message = f"refused {address}: {reason}"
        else:
            message = f"refused {address} for {host}: {reason}"
        super().__init__(message)


class RedirectRefused(OutboundBlocked):
    """A redirect to another origin that would re-send the request body, so is not followed.

    Attributes:
        status: The redirect's status code (307 or 308, or 301 answering a PUT and the like).
        method: The request's method, kept by such a redirect.
        source: The origin that answered with the redirect, e.g. ``https://api.example.com``.
        target: The origin it pointed to.
    """

    def __init__(self, status: int, method: str, source: httpx.URL, target: httpx.URL) -> None:
        self.status = status
        self.method = method
        self.source = _origin_text(source)
        self.target = _origin_text(target)
        super().__init__(
            target.host,
            None,
            f"a {status} redirect from {self.source} to {self.target} would re-send the"
            f" {method} body to another origin",
        )


class ResponseTooLarge(WorkflowStationError):
    """A response body larger than the caller's cap.

    Attributes:
        limit: The cap in bytes.
        size: The declared Content-Length, or how many bytes had arrived when the cap was
            passed.
        declared: True when `size` comes from the Content-Length header.
    """

    error_type = ErrorType.RESPONSE_TOO_LARGE

    def __init__(self, limit: int, *, size: int, declared: bool) -> None:
        self.limit = limit
        self.size = size
        self.declared = declared
        seen = f"Content-Length: {size}" if declared else f"{size} bytes read before stopping"
        super().__init__(f"response body is larger than the {limit}-byte limit ({seen})")


class InvalidUrl(httpx.UnsupportedProtocol):
    """A URL whose scheme the outbound client refuses to fetch (anything but http/https).

    Attributes:
        url: The URL as given.
    """

    def __init__(self, url: str, message: str, *, request: httpx.Request | None = None) -> None:
        self.url = url
        super().__init__(message, request=request)


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


# Order matters: the first network that contains an address names the reason.
_BLOCKED_V4: list[tuple[ipaddress.IPv4Network, str]] = [
    (ipaddress.IPv4Network(net), reason)
    for net, reason in [
        ("0.0.0.0/32", "unspecified address"),
        ("0.0.0.0/8", "'this network' address"),
        ("10.0.0.0/8", "private address"),
        ("100.64.0.0/10", "carrier-grade NAT shared address"),
        ("127.0.0.0/8", "loopback address"),
        ("169.254.0.0/16", "link-local address"),
        ("172.16.0.0/12", "private address"),
        ("192.0.0.0/24", "reserved address (IETF protocol assignments)"),
        ("192.0.2.0/24", "documentation address"),
        ("192.88.99.0/24", "reserved address (6to4 relay anycast)"),
        ("192.168.0.0/16", "private address"),
        ("198.18.0.0/15", "benchmarking address"),
        ("198.51.100.0/24", "documentation address"),
        ("203.0.113.0/24", "documentation address"),
        ("224.0.0.0/4", "multicast address"),
        ("255.255.255.255/32", "broadcast address"),
        ("240.0.0.0/4", "reserved address"),
    ]
]

_BLOCKED_V6: list[tuple[ipaddress.IPv6Network, str]] = [
    (ipaddress.IPv6Network(net), reason)
    for net, reason in [
        ("::/128", "unspecified address"),
        ("::1/128", "loopback address"),
        ("64:ff9b:1::/48", "local-use NAT64 address"),
        ("2001::/32", "Teredo tunnelling address"),
        ("2001:2::/48", "benchmarking address"),
        ("2001:db8::/32", "documentation address"),
        ("fc00::/7", "private address (unique local)"),
        ("fe80::/10", "link-local address"),
        ("fec0::/10", "site-local address"),
        ("ff00::/8", "multicast address"),
    ]
]

_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address stands for, and the name of that form, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped"
    # :: and ::1 are in ::/96 too, but they are themselves, not IPv4 0.0.0.0 / 0.0.0.1.
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "IPv4-compatible"
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4"
    return None


def _parse_ip(value: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def blocked_reason(address: str | IPAddress) -> str | None:
    """Why `address` is refused by default, or None if it is a public address.

    Args:
        address: An IPv4 or IPv6 address.

    Returns:
        A short reason such as ``"loopback address"``, or None.

    Raises:
        ValueError: `address` is not an IP address.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv4Address):
        return next((reason for net, reason in _BLOCKED_V4 if ip in net), None)
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        v4, form = embedded
        inner = blocked_reason(v4)
        return None if inner is None else f"{inner} {v4} in {form} IPv6 form"
    reason = next((reason for net, reason in _BLOCKED_V6 if ip in net), None)
    if reason is None and ip not in _GLOBAL_UNICAST_V6:
        reason = "reserved address (outside global unicast 2000::/3)"
    return reason


def _normalize_host(host: str) -> str:
    return host.lower().rstrip(".")


_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_PORT = re.compile(r"[1-9][0-9]{0,4}")


@dataclass(frozen=True)
class AllowEntry:
    """One parsed ``OUTBOUND_ALLOW`` entry; exactly one of `network`, `host`, `suffix` is set.

    Attributes:
        text: The entry as written.
        network: The addresses it opens, for an IP address or CIDR entry.
        host: The host name it opens (lower case, ASCII, no trailing dot).
        suffix: For a ``*.suffix`` entry, the suffix (``svc.cluster.local``).
        port: The only port it opens, or None for every port.
    """

    text: str
    network: IPNetwork | None = None
    host: str | None = None
    suffix: str | None = None
    port: int | None = None

    def allows(self, host: str, address: IPAddress, port: int | None) -> bool:
        """Whether this entry opens a connection to `address` on `port` for the URL host `host`.

        Args:
            host: The URL's host, normalized (`_normalize_host`).
            address: The address the connection would go to.
            port: The port it would go to; None (unknown) never matches a port-bound entry.
        """
        if self.port is not None and port != self.port:
            return False
        if self.network is not None:
            return address in self.network
        if self.host is not None:
            return host == self.host
        return self.suffix is not None and host.endswith("." + self.suffix)


def _allow_port(text: str) -> int:
    if _PORT.fullmatch(text) is None or int(text) > 65535:
        raise ValueError(f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def _allow_network(text: str) -> IPNetwork:
    if "%" in text:
        raise ValueError("IPv6 zone identifiers (%…) are not supported")
    # strict: '10.0.0.5/0' is a typo for something, not a wish to open 0.0.0.0/0.
    return ipaddress.ip_network(text, strict=True)


def _allow_host_name(text: str) -> str:
    """The lower-case ASCII form of a host name, or ValueError saying what is wrong with it."""
    name = text.lower()
    if not name.isascii():
        try:
            # The form httpx sends and hands to the backend, so the two compare equal.
            name = idna.encode(name).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"not a valid internationalized host name ({exc})") from None
    name = name.removesuffix(".")
    if not name:
        raise ValueError("expected a host name, an IP address or a CIDR network")
    if len(name) > 253:
        raise ValueError("a host name is at most 253 characters long")
    labels = name.split(".")
    for label in labels:
        if _LABEL.fullmatch(label) is None:
            raise ValueError(
                f"{label!r} is not a DNS label (1 to 63 letters, digits, hyphens or"
                " underscores, not starting or ending with a hyphen)"
            )
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        raise ValueError(
            "a host name cannot end in a number: this spells an IP address; write IPv4"
            " addresses as four decimal numbers (10.0.0.1) and networks as CIDR (10.0.0.0/8)"
        )
    return name


def _parse_allow_entry(entry: str) -> AllowEntry:
    if not entry:
        raise ValueError("the entry is empty")
    if "://" in entry:
        raise ValueError("expected a host, not a URL: leave out the scheme and path")
    if entry.startswith("["):
        inside, closed, rest = entry[1:].partition("]")
        if not closed:
            raise ValueError("'[' without a closing ']'")
        if rest and not rest.startswith(":"):
            raise ValueError("only ':port' may follow ']'")
        network = _allow_network(inside)
        if network.version != 6:
            raise ValueError("brackets are for IPv6 addresses and networks only")
        return AllowEntry(entry, network=network, port=_allow_port(rest[1:]) if rest else None)
    if entry.count(":") > 1:
        try:
            return AllowEntry(entry, network=_allow_network(entry))
        except ValueError as exc:
            raise ValueError(f"{exc} (an IPv6 address takes a port as [address]:port)") from None
    name, has_port, port_text = entry.partition(":")
    port = _allow_port(port_text) if has_port else None
    if "/" in name or _parse_ip(name) is not None:
        return AllowEntry(entry, network=_allow_network(name), port=port)
    if name.startswith("*."):
        return AllowEntry(entry, suffix=_allow_host_name(name[2:]), port=port)
    if "*" in name:
        raise ValueError("'*' may only stand alone as the first label, as in *.example.com")
    return AllowEntry(entry, host=_allow_host_name(name), port=port)


def parse_allow_entry(text: str) -> AllowEntry:
    """Parse one ``OUTBOUND_ALLOW`` entry strictly (the syntax is in the module docstring).

    Args:
        text: The entry; surrounding whitespace is ignored.

    Returns:
        The parsed entry.

    Raises:
        ValueError: The entry is not one of the accepted forms; the message quotes it and
            says why (``invalid outbound allow entry '10.0.0.5/0': 10.0.0.5/0 has host bits
            set``).
    """
    try:
        return _parse_allow_entry(text.strip())
    except ValueError as exc:
        raise ValueError(f"invalid outbound allow entry {text!r}: {exc}") from None


def parse_allow_list(entries: Iterable[str]) -> tuple[AllowEntry, ...]:
    """Parse every entry of an allow-list, skipping blank ones; see `parse_allow_entry`.

    Raises:
        ValueError: An entry is invalid (the first one found).
    """
    return tuple(parse_allow_entry(entry) for entry in entries if entry.strip())


class OutboundPolicy:
    """The default block-list plus the deployment's allow-list; pure, no I/O.

    Args:
        allow: ``OUTBOUND_ALLOW`` entries: IP addresses, CIDR networks, host names and
            ``*.suffix`` wildcards, each optionally with ``:port``. They open destinations
            that are in a blocked range.

    Raises:
        ValueError: An allow entry is invalid (see `parse_allow_entry`).
    """

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.entries: tuple[AllowEntry, ...] = parse_allow_list(allow)

    def check(self, host: str, address: str, port: int | None = None) -> None:
        """Refuse connecting to `address` on behalf of `host` unless it is allowed.

        Args:
            host: The host name or IP literal from the URL.
            address: One address `host` resolved to (or the literal itself).
            port: The port to connect to; None when unknown, which no port-bound allow
                entry matches.

        Raises:
            OutboundBlocked: The address is in a blocked range and no allow entry opens it
                (by host name, wildcard or network, on this port), or `address` is not an IP
                address.
        """
        ip = _parse_ip(address)
        if ip is None:
            raise OutboundBlocked(host, address, "resolver returned something that is not an IP")
        name = _normalize_host(host)
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(ip)):
            candidates.append(embedded[0])

        def opened(entry: AllowEntry, on_port: int | None) -> bool:
            return any(entry.allows(name, candidate, on_port) for candidate in candidates)

        if any(opened(entry, port) for entry in self.entries):
            return
        reason = blocked_reason(ip)
        if reason is None:
            return
        # Say so when the address is open on another port: the likeliest mistake.
        ports = sorted({e.port for e in self.entries if e.port is not None and opened(e, e.port)})
        if ports:
            listed = ", ".join(str(p) for p in ports)
            reason = f"{reason} (OUTBOUND_ALLOW opens it on port {listed} only)"
        raise OutboundBlocked(host, address, reason)


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
        literal = _parse_ip(host)
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


#: A request extension: the lower-cased names of headers whose values hold secrets, dropped
#: like `CREDENTIAL_HEADERS` on a redirect to another origin (httpx carries a request's
#: extensions to each redirect hop).
SECRET_HEADERS = "workflow_station.secret_headers"

#: Set by `OutboundClient` on a redirect request that must not be sent (a `RedirectRefused`);
#: the transport raises it when, and only if, the redirect is followed.
_REFUSED_REDIRECT = "workflow_station.refused_redirect"


#: Connections per shard of the outbound pool (`ShardedPool`).
CONNECTIONS_PER_SHARD = 4


class _CountedStream:
    """A response body that tells its shard when it is closed (its request is over then)."""

    def __init__(self, stream: typing.AsyncIterable[bytes], done: typing.Callable[[], None]):
        self._stream = stream
        self._done: typing.Callable[[], None] | None = done

    async def __aiter__(self) -> typing.AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            if hasattr(self._stream, "aclose"):
                await self._stream.aclose()
        finally:
            if self._done is not None:
                self._done()
                self._done = None


class ShardedPool:
    """Several httpcore pools of `CONNECTIONS_PER_SHARD` connections each; every request
    goes to the one with the fewest requests open.

    httpcore 1.0's pool rescans all its connections for every queued request whenever a
    request ends: with 100 connections busy, a fan-out spent most of the worker's CPU there
    (py-spy: `is_idle`, `_assign_requests_to_connections`). Small pools keep each rescan
    small; the total of connections stays `max_connections`.
    """

    def __init__(self, pools: list[httpcore.AsyncConnectionPool]) -> None:
        self.pools = pools
        self._open = [0] * len(pools)

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        shard = min(range(len(self.pools)), key=self._open.__getitem__)
        self._open[shard] += 1

        def done() -> None:
            self._open[shard] -= 1

        try:
            response = await self.pools[shard].handle_async_request(request)
        except BaseException:
            done()
            raise
        response.stream = _CountedStream(
            typing.cast(typing.AsyncIterable[bytes], response.stream), done
        )
        return response

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()

    async def __aenter__(self) -> ShardedPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class _GuardedTransport(httpx.AsyncHTTPTransport):
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
        refused = request.extensions.get(_REFUSED_REDIRECT)
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


class _NoCookieJar(http.cookiejar.CookieJar):
    """A cookie jar that never holds a cookie.

    Every way into a `CookieJar` (``extract_cookies`` on a response, ``set_cookie_if_ok``,
    `httpx.Cookies.set`) ends in `set_cookie`, so refusing there keeps the jar empty for good,
    and httpx, which builds each request's ``Cookie`` header from the jar, adds none.
    """

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        """Drop `cookie`."""


_DEFAULT_PORTS = {"http": 80, "https": 443}
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


def _origin_text(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def _carries_body(request: httpx.Request) -> bool:
    stream = request.stream
    if isinstance(stream, httpx.ByteStream):
        return bool(b"".join(stream))
    return True  # a streamed body: there is one, whatever its length


class OutboundClient(httpx.AsyncClient):
    """An `httpx.AsyncClient` that keeps no cookies and leaves secrets and bodies at their origin.

    Built by `build_outbound_client`; the rules are in the module docstring. It hooks into
    httpx's redirect handling through `_build_redirect_request`, the one method httpx builds
    every next hop with, whether or not the redirect is then followed.

    Args:
        transport: The guarded transport.
        timeout: The default timeouts.
        max_redirects: Redirects followed per request; 0 returns redirect responses as they are.
        sensitive_headers: Headers dropped on a redirect to another origin, besides
            `CREDENTIAL_HEADERS`.
    """

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport,
        timeout: httpx.Timeout,
        max_redirects: int,
        sensitive_headers: Iterable[str],
    ) -> None:
        super().__init__(
            transport=transport,
            timeout=timeout,
            follow_redirects=max_redirects > 0,
            max_redirects=max_redirects,
            cookies=_NoCookieJar(),
            # No env proxies (they would connect past the guard) and no ~/.netrc credentials
            # handed to user-chosen hosts.
            trust_env=False,
        )
        #: Lower-cased names of every header a cross-origin redirect drops.
        self.cross_origin_dropped: frozenset[str] = frozenset(
            name.lower() for name in (*CREDENTIAL_HEADERS, *sensitive_headers)
        )

    @property
    def cookies(self) -> httpx.Cookies:
        """Always empty: the jar drops whatever is put into it."""
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        # httpx would wrap a new, ordinary jar, shared by every run and tenant.
        raise AttributeError("the outbound client keeps no cookies; send a Cookie header")

    def _build_redirect_request(
        self, request: httpx.Request, response: httpx.Response
    ) -> httpx.Request:
        redirect = super()._build_redirect_request(request, response)
        if _origin(redirect.url) == _origin(request.url):
            # httpx drops Cookie on every hop to rebuild it from the jar. The jar is empty, so
            # the only cookies are the call's own, and they may stay with their origin.
            cookies = request.headers.get_list("Cookie")
            if cookies:
                redirect.headers["Cookie"] = "; ".join(cookies)
            return redirect
        for name in self.cross_origin_dropped | request.extensions.get(SECRET_HEADERS, frozenset()):
            redirect.headers.pop(name, None)
        if _carries_body(redirect):
            # Raised by the transport, not here: with redirects off, this request is only
            # offered as `response.next_request`, and the redirect response is the answer.
            redirect.extensions[_REFUSED_REDIRECT] = RedirectRefused(
                response.status_code, redirect.method, request.url, redirect.url
            )
        return redirect


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
        allow: ``OUTBOUND_ALLOW`` entries exempt from the block-list; see the module
            docstring.
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
        transport=_GuardedTransport(backend, limits=limits),
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        max_redirects=max_redirects,
        sensitive_headers=_header_names(sensitive_headers),
    )
    # A span per hop and `traceparent` sent with it, when the process has turned tracing on.
    instrument_outbound_client(client)
    return client


def _declared_length(response: httpx.Response) -> int | None:
    if response.request.method == "HEAD" or response.status_code in (204, 304):
        return None  # Content-Length describes a body that is not sent
    value = response.headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """Read a streamed response's body, refusing to hold more than `max_bytes` of it.

    Content-Length is checked before anything is read; then the (decoded) body is counted as
    it arrives, so an undeclared or lying length is stopped at the first chunk past the cap.
    The response is closed when the cap is passed; otherwise closing it stays with the caller.

    Args:
        response: A response from ``client.send(request, stream=True)`` or ``client.stream``.
        max_bytes: The largest body accepted.

    Returns:
        The body (content-decoded, e.g. gunzipped).

    Raises:
        ResponseTooLarge: The body is larger than `max_bytes`.
    """
    declared = _declared_length(response)
    if declared is not None and declared > max_bytes:
        await response.aclose()
        raise ResponseTooLarge(max_bytes, size=declared, declared=True)
    chunks: list[bytes] = []
    received = 0
    # aclosing: stop httpx's decoder generator now, not whenever it is garbage-collected.
    body = typing.cast(AsyncGenerator[bytes, None], response.aiter_bytes())
    async with contextlib.aclosing(body):
        async for chunk in body:
            received += len(chunk)
            if received > max_bytes:
                await response.aclose()
                raise ResponseTooLarge(max_bytes, size=received, declared=False)
            chunks.append(chunk)
    return b"".join(chunks)
