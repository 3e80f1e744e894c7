"""The outbound guard: what it refuses, what it lets through, redirects, and the body cap.

No test sends a packet past loopback: names resolve through `StubResolver`, connections to
public addresses go to `RecordingBackend`, which raises instead of connecting, and the only
real sockets are to servers started here on 127.0.0.1. The system resolver is only asked
about ``localhost`` (answered from /etc/hosts) and numeric hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import httpcore
import httpx
import pytest

from activities.http.outbound import build_outbound_client
from activities.http.outbound.body import ResponseTooLarge, read_capped
from activities.http.outbound.policy import OutboundBlocked, OutboundPolicy, blocked_reason
from activities.http.outbound.pool import CONNECTIONS_PER_SHARD, ShardedPool
from activities.http.outbound.redirects import (
    CREDENTIAL_HEADERS,
    DEFAULT_SENSITIVE_HEADERS,
    OutboundClient,
    RedirectRefused,
)
from activities.http.outbound.transport import InvalidUrl

BLOCKED = [
    ("127.0.0.1", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("255.255.255.255", "broadcast"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),
    ("ff02::1", "multicast"),
    ("::ffff:10.0.0.1", "private address 10.0.0.1 in IPv4-mapped"),
    ("::ffff:127.0.0.1", "loopback address 127.0.0.1 in IPv4-mapped"),
    ("::ffff:169.254.169.254", "link-local address 169.254.169.254 in IPv4-mapped"),
    ("::a00:1", "private address 10.0.0.1 in IPv4-compatible"),
    ("64:ff9b::a00:1", "private address 10.0.0.1 in NAT64"),
    ("2002:a00:1::1", "private address 10.0.0.1 in 6to4"),
]

PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


async def request_capped(
    client: httpx.AsyncClient, method: str, url: str, *, max_bytes: int
) -> tuple[httpx.Response, bytes]:
    """Stream a request and read its body under the cap, as the HTTP activity does."""
    async with client.stream(method, url) as response:
        body = await read_capped(response, max_bytes)
    return response, body


class NeverConnect(Exception):
    """Raised by `RecordingBackend` in place of opening a socket."""


class StubResolver:
    """Resolves only the names in its table; everything else fails like NXDOMAIN."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not in the test's table")
        return self.table[host]


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records every connect; connects for real only to loopback, and only when told to."""

    def __init__(
        self,
        *,
        real: bool = False,
        fail: Callable[[str], BaseException | None] | None = None,
        stream: httpcore.AsyncNetworkStream | None = None,
    ) -> None:
        self.calls: list[tuple[str, int]] = []
        self._real = httpcore.AnyIOBackend() if real else None
        self._fail = fail
        self._stream = stream

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.calls.append((host, port))
        if self._fail is not None and (error := self._fail(host)) is not None:
            raise error
        if self._stream is not None:
            return self._stream
        if self._real is None:
            raise NeverConnect(f"would have connected to {host}:{port}")
        assert host in ("127.0.0.1", "::1"), f"test tried to connect to {host}"
        return await self._real.connect_tcp(host, port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class TlsProbeStream(httpcore.AsyncNetworkStream):
    """A stream that records the TLS server name httpcore asks for, then stops."""

    def __init__(self) -> None:
        self.server_hostname: str | None = None

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.server_hostname = server_hostname
        raise NeverConnect("stopped before the TLS handshake")

    async def aclose(self) -> None:
        pass


@dataclass
class LocalServer:
    """A tiny HTTP/1.1 server on 127.0.0.1 that records what reached it."""

    port: int = 0
    connections: int = 0
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def paths(self) -> list[str]:
        return [target for _, target, _ in self.requests]


Query = dict[str, list[str]]
Handler = Callable[[str, Query, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


async def _route(
    path: str, query: Query, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    if path == "/ok":
        writer.write(_head("200 OK", {"Content-Length": "5", "Connection": "close"}) + b"hello")
    elif path == "/redirect":
        to = query["to"][0]
        status = f"{query.get('status', ['302'])[0]} Redirect"
        headers = {"Location": to, "Content-Length": "0", "Connection": "close"}
        if "cookie" in query:
            headers["Set-Cookie"] = f"{query['cookie'][0]}; Path=/"
        writer.write(_head(status, headers))
    elif path == "/set-cookie":
        headers = {"Set-Cookie": "sid=run-a-session; Path=/", "Content-Length": "2"}
        writer.write(_head("200 OK", {**headers, "Connection": "close"}) + b"ok")
    elif path.startswith("/chain/"):
        left = int(path.removeprefix("/chain/"))
        if left:
            writer.write(
                _head(
                    "302 Found",
                    {
                        "Location": f"/chain/{left - 1}",
                        "Content-Length": "0",
                        "Connection": "close",
                    },
                )
            )
        else:
            writer.write(_head("200 OK", {"Content-Length": "3", "Connection": "close"}) + b"end")
    elif path == "/declared-big":
        # Declares a megabyte, sends ten bytes, then waits: a reader that trusted the body
        # instead of the header would sit here until the read timeout.
        writer.write(_head("200 OK", {"Content-Length": "1000000"}) + b"x" * 10)
        await writer.drain()
        await reader.read()
    elif path == "/chunked":
        count, size = int(query["chunks"][0]), int(query["size"][0])
        finish = query.get("finish", ["1"])[0] == "1"
        writer.write(_head("200 OK", {"Transfer-Encoding": "chunked", "Connection": "close"}))
        for _ in range(count):
            writer.write(f"{size:x}\r\n".encode() + b"y" * size + b"\r\n")
        if finish:
            writer.write(b"0\r\n\r\n")
        else:
            # Never ends the body: only a reader that stops at the cap gets past this.
            await writer.drain()
            await reader.read()
    else:
        writer.write(_head("404 Not Found", {"Content-Length": "0", "Connection": "close"}))


@contextlib.asynccontextmanager
async def serve(route: Handler = _route) -> AsyncIterator[LocalServer]:
    """Run a fresh server on 127.0.0.1 for one test."""
    state = LocalServer()
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        state.connections += 1
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *header_lines = head.split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in header_lines if line)
            }
            state.requests.append((method, target, headers))
            # Read the body before answering: closing on unread data would reset the connection.
            length = int(headers.get("content-length", "0"))
            state.bodies.append(await reader.readexactly(length) if length else b"")
            url = urlsplit(target)
            await route(url.path, parse_qs(url.query), reader, writer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


# --- the policy on its own -------------------------------------------------------------------


@pytest.mark.parametrize(("address", "reason"), BLOCKED)
def test_blocked_reason_names_the_range(address: str, reason: str) -> None:
    assert reason in (blocked_reason(address) or "")


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_not_blocked(address: str) -> None:
    assert blocked_reason(address) is None


def test_allow_list_matches_names_case_insensitively_and_networks() -> None:
    policy = OutboundPolicy(["Internal.Example.", "10.1.0.0/16", "::1"])

    policy.check("internal.example", "10.9.9.9")
    policy.check("INTERNAL.example.", "127.0.0.1")
    policy.check("anything.test", "10.1.2.3")
    policy.check("anything.test", "::ffff:10.1.2.3")
    policy.check("::1", "::1")
    with pytest.raises(OutboundBlocked, match="refused 10.2.0.1 for other.example: private"):
        policy.check("other.example", "10.2.0.1")


@pytest.mark.parametrize("entry", ["http://internal.example", "host:65536", "10.0.0.0/33", "a b"])
def test_invalid_allow_entries_fail_at_startup(entry: str) -> None:
    with pytest.raises(ValueError, match="invalid outbound allow entry"):
        build_outbound_client(allow=[entry])


async def test_client_settings() -> None:
    async with build_outbound_client(
        connect_timeout=3.0, read_timeout=7.0, max_redirects=4
    ) as client:
        assert (client.timeout.connect, client.timeout.read) == (3.0, 7.0)
        assert client.follow_redirects is True
        assert client.max_redirects == 4
    async with build_outbound_client(max_redirects=0) as client:
        assert client.follow_redirects is False


# --- refusals happen before any connection -----------------------------------------------------


@pytest.mark.parametrize(("address", "reason"), BLOCKED)
async def test_name_resolving_to_blocked_address_is_refused_before_connecting(
    address: str, reason: str
) -> None:
    inner = RecordingBackend()
    resolver = StubResolver({"target.test": [address]})
    async with build_outbound_client(resolver=resolver, inner_backend=inner) as client:
        with pytest.raises(OutboundBlocked) as caught:
            await client.get("http://target.test/")

    assert (caught.value.host, caught.value.address) == ("target.test", address)
    assert reason in caught.value.reason
    assert str(caught.value) == f"refused {address} for target.test: {caught.value.reason}"
    assert resolver.lookups == ["target.test"]
    assert inner.calls == []


@pytest.mark.parametrize(("address", "reason"), BLOCKED)
async def test_ip_literal_in_blocked_range_is_refused_without_resolving(
    address: str, reason: str
) -> None:
    inner = RecordingBackend()
    resolver = StubResolver({})
    async with build_outbound_client(resolver=resolver, inner_backend=inner) as client:
        with pytest.raises(OutboundBlocked, match=reason):
            await client.get(f"http://{_url_host(address)}:8080/")

    assert resolver.lookups == []
    assert inner.calls == []


async def test_metadata_service_refusal_says_host_address_and_why() -> None:
    inner = RecordingBackend()
    resolver = StubResolver({"metadata.internal": ["169.254.169.254"]})
    async with build_outbound_client(resolver=resolver, inner_backend=inner) as client:
        with pytest.raises(OutboundBlocked) as caught:
            await client.get("http://metadata.internal/latest/meta-data/")

    assert str(caught.value) == "refused 169.254.169.254 for metadata.internal: link-local address"
    assert inner.calls == []


async def test_one_blocked_address_among_public_ones_refuses_the_name() -> None:
    inner = RecordingBackend()
    resolver = StubResolver({"mixed.test": ["93.184.216.34", "10.0.0.1"]})
    async with build_outbound_client(resolver=resolver, inner_backend=inner) as client:
        with pytest.raises(OutboundBlocked, match="refused 10.0.0.1 for mixed.test"):
            await client.get("http://mixed.test/")

    assert inner.calls == []


# --- what passes through -----------------------------------------------------------------------


@pytest.mark.parametrize("address", PUBLIC)
async def test_public_address_is_connected_by_ip_literal(address: str) -> None:
    inner = RecordingBackend()
    resolver = StubResolver({"public.test": [address]})
    async with build_outbound_client(resolver=resolver, inner_backend=inner) as client:
        with pytest.raises(NeverConnect):
            await client.get("http://public.test:8080/path")

    assert inner.calls == [(address, 8080)]


async def test_tls_keeps_the_host_name_for_sni_while_connecting_to_the_address() -> None:
    stream = TlsProbeStream()
    inner = RecordingBackend(stream=stream)
    resolver = StubResolver({"secure.test": ["93.184.216.34"]})
    async with build_outbound_client(resolver=resolver, inner_backend=inner) as client:
        with pytest.raises(NeverConnect):
            await client.get("https://secure.test/")

    assert inner.calls == [("93.184.216.34", 443)]
    assert stream.server_hostname == "secure.test"


async def test_refused_connection_falls_back_to_the_next_address_once() -> None:
    inner = RecordingBackend(
        fail=lambda host: httpcore.ConnectError("refused") if host == "93.184.216.34" else None
    )
    resolver = StubResolver({"two.test": ["93.184.216.34", "93.184.216.35"]})
    async with build_outbound_client(resolver=resolver, inner_backend=inner) as client:
        with pytest.raises(NeverConnect):
            await client.get("http://two.test/")

    assert inner.calls == [("93.184.216.34", 80), ("93.184.216.35", 80)]


async def test_connect_failure_is_an_httpx_connect_error_and_is_not_retried() -> None:
    inner = RecordingBackend(fail=lambda host: httpcore.ConnectError("connection refused"))
    resolver = StubResolver({"down.test": ["93.184.216.34"]})
    async with build_outbound_client(resolver=resolver, inner_backend=inner) as client:
        with pytest.raises(httpx.ConnectError, match="connection refused"):
            await client.get("http://down.test/")

    assert inner.calls == [("93.184.216.34", 80)]


async def test_unresolvable_name_is_an_httpx_connect_error() -> None:
    inner = RecordingBackend()
    async with build_outbound_client(resolver=StubResolver({}), inner_backend=inner) as client:
        with pytest.raises(httpx.ConnectError, match="could not resolve nowhere.test"):
            await client.get("http://nowhere.test/")

    assert inner.calls == []


async def test_resolving_counts_against_the_connect_timeout() -> None:
    class HangingResolver:
        async def resolve(self, host: str, port: int) -> list[str]:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    inner = RecordingBackend()
    async with build_outbound_client(
        resolver=HangingResolver(), inner_backend=inner, connect_timeout=0.05
    ) as client:
        with pytest.raises(httpx.ConnectTimeout, match="connecting to slow.test:80 timed out"):
            await client.get("http://slow.test/")

    assert inner.calls == []


# --- schemes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["ftp://files.test/x", "file:///etc/passwd", "ws://socket.test/", "gopher://g.test/"]
)
async def test_non_http_scheme_is_refused_up_front(url: str) -> None:
    inner = RecordingBackend()
    resolver = StubResolver({})
    async with build_outbound_client(resolver=resolver, inner_backend=inner) as client:
        with pytest.raises(InvalidUrl, match="only http and https"):
            await client.get(url)

    assert resolver.lookups == []
    assert inner.calls == []


async def test_invalid_url_is_reported_like_httpx_bad_url_errors() -> None:
    async with build_outbound_client(inner_backend=RecordingBackend()) as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("wss://socket.test/")


# --- real connections to loopback ------------------------------------------------------------


async def test_loopback_literal_is_refused_for_real_when_not_allowed() -> None:
    async with serve() as server, build_outbound_client() as client:
        with pytest.raises(OutboundBlocked, match="loopback address"):
            await client.get(f"{server.base_url}/ok")

        assert server.connections == 0


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "2130706433", "127.1", "0x7f.1"])
async def test_other_spellings_of_loopback_are_refused_with_the_system_resolver(host: str) -> None:
    async with serve() as server, build_outbound_client() as client:
        with pytest.raises(OutboundBlocked) as caught:
            await client.get(f"http://{host}:{server.port}/ok")

        assert caught.value.address is not None
        assert blocked_reason(caught.value.address) == "loopback address"
        assert server.connections == 0


async def test_allow_list_by_cidr_reaches_loopback() -> None:
    async with serve() as server, build_outbound_client(allow=["127.0.0.0/8"]) as client:
        response = await client.get(f"{server.base_url}/ok")

    assert (response.status_code, response.text) == (200, "hello")
    assert server.paths == ["/ok"]


async def test_allow_list_by_host_name_connects_to_the_resolved_address() -> None:
    inner = RecordingBackend(real=True)
    resolver = StubResolver({"service.test": ["127.0.0.1"]})
    async with (
        serve() as server,
        build_outbound_client(
            allow=["Service.Test"], resolver=resolver, inner_backend=inner
        ) as client,
    ):
        response = await client.get(f"http://service.test:{server.port}/ok")

    assert (response.status_code, response.text) == (200, "hello")
    assert inner.calls == [("127.0.0.1", server.port)]
    assert server.requests[0][2]["host"] == f"service.test:{server.port}"


# --- redirects ---------------------------------------------------------------------------------


async def test_redirect_to_blocked_address_is_refused_at_the_second_hop() -> None:
    inner = RecordingBackend(real=True)
    resolver = StubResolver({"internal.test": ["10.0.0.1"]})
    async with (
        serve() as server,
        build_outbound_client(
            allow=["127.0.0.0/8"], resolver=resolver, inner_backend=inner
        ) as client,
    ):
        with pytest.raises(OutboundBlocked) as caught:
            await client.get(f"{server.base_url}/redirect?to=http://internal.test/secret")

    assert (caught.value.host, caught.value.address) == ("internal.test", "10.0.0.1")
    assert server.paths == ["/redirect?to=http://internal.test/secret"]
    assert inner.calls == [("127.0.0.1", server.port)]


async def test_redirect_from_allowed_name_to_unallowed_loopback_literal_is_refused() -> None:
    inner = RecordingBackend(real=True)
    resolver = StubResolver({"service.test": ["127.0.0.1"]})
    async with (
        serve() as server,
        build_outbound_client(
            allow=["service.test"], resolver=resolver, inner_backend=inner
        ) as client,
    ):
        target = f"http://127.0.0.1:{server.port}/ok"
        with pytest.raises(OutboundBlocked, match="refused 127.0.0.1: loopback address"):
            await client.get(f"http://service.test:{server.port}/redirect?to={target}")

    assert server.paths == [f"/redirect?to={target}"]


async def test_redirect_to_non_http_scheme_is_refused() -> None:
    async with serve() as server, build_outbound_client(allow=["127.0.0.1"]) as client:
        with pytest.raises(InvalidUrl, match="'file'"):
            await client.get(f"{server.base_url}/redirect?to=file:///etc/passwd")


async def test_allowed_redirects_are_followed() -> None:
    async with serve() as server, build_outbound_client(allow=["127.0.0.1"]) as client:
        response = await client.get(f"{server.base_url}/chain/2")

    assert (response.status_code, response.text) == (200, "end")
    assert server.paths == ["/chain/2", "/chain/1", "/chain/0"]


async def test_redirects_past_the_limit_fail() -> None:
    async with (
        serve() as server,
        build_outbound_client(allow=["127.0.0.1"], max_redirects=2) as client,
    ):
        with pytest.raises(httpx.TooManyRedirects):
            await client.get(f"{server.base_url}/chain/3")


async def test_max_redirects_zero_returns_the_redirect_unfollowed() -> None:
    async with (
        serve() as server,
        build_outbound_client(allow=["127.0.0.1"], max_redirects=0) as client,
    ):
        response = await client.get(f"{server.base_url}/redirect?to=/ok")

    assert response.status_code == 302
    assert response.headers["location"] == "/ok"
    assert server.paths == ["/redirect?to=/ok"]


async def test_redirect_hop_to_an_allowed_port_only_entry_is_refused_on_other_ports() -> None:
    async with serve() as first, serve() as second:
        allow = [f"127.0.0.1:{first.port}"]
        async with build_outbound_client(allow=allow) as client:
            assert (await client.get(f"{first.base_url}/ok")).status_code == 200
            with pytest.raises(OutboundBlocked) as caught:
                await client.get(f"{first.base_url}/redirect?to={second.base_url}/ok")

    assert caught.value.reason == (
        f"loopback address (OUTBOUND_ALLOW opens it on port {first.port} only)"
    )
    assert second.connections == 0


# --- cookies -----------------------------------------------------------------------------------


async def test_a_cookie_one_call_is_given_is_not_sent_with_the_next_call() -> None:
    async with serve() as server, build_outbound_client(allow=["127.0.0.1"]) as client:
        first = await client.get(f"{server.base_url}/set-cookie")
        await client.get(f"{server.base_url}/ok")

    assert first.headers["set-cookie"].startswith("sid=run-a-session")
    assert first.cookies.get("sid") == "run-a-session"  # the response still shows it
    assert "cookie" not in server.requests[1][2]
    assert len(client.cookies) == 0


async def test_a_cookie_set_on_a_redirect_is_not_sent_to_the_next_hop() -> None:
    async with serve() as server, build_outbound_client(allow=["127.0.0.1"]) as client:
        response = await client.get(f"{server.base_url}/redirect?to=/ok&cookie=sid=hop-one")

    assert response.status_code == 200
    assert server.paths == ["/redirect?to=/ok&cookie=sid=hop-one", "/ok"]
    assert "cookie" not in server.requests[1][2]


async def test_the_calls_own_cookie_header_is_sent_and_kept_on_a_same_origin_redirect() -> None:
    async with serve() as server, build_outbound_client(allow=["127.0.0.1"]) as client:
        await client.get(
            f"{server.base_url}/redirect?to=/ok&cookie=sid=from-server",
            headers={"Cookie": "mine=1"},
        )

    assert [headers.get("cookie") for _, _, headers in server.requests] == ["mine=1", "mine=1"]


async def test_the_client_cookie_jar_cannot_be_filled_or_replaced() -> None:
    async with build_outbound_client() as client:
        client.cookies.set("sid", "planted", domain="example.com")
        assert len(client.cookies) == 0
        with pytest.raises(AttributeError, match="keeps no cookies"):
            client.cookies = {"sid": "planted"}  # type: ignore[assignment]


# --- what follows a redirect to another origin -------------------------------------------------

SECRETS = {
    "Authorization": "Bearer step-token",
    "Cookie": "sid=step-session",
    "Proxy-Authorization": "Basic cHJveHk6c2VjcmV0",
    "x-api-key": "k1",
    "API-KEY": "k2",
    "X-Api-Token": "k3",
    "X-Auth-Token": "k4",
    "X-Access-Token": "k5",
    "X-Goog-Api-Key": "k6",
    "Private-Token": "k7",
    "Ocp-Apim-Subscription-Key": "k8",
}


def test_default_sensitive_headers_are_the_documented_ones() -> None:
    assert {name.lower() for name in (*CREDENTIAL_HEADERS, *DEFAULT_SENSITIVE_HEADERS)} == {
        name.lower() for name in SECRETS
    }


async def test_a_cross_origin_redirect_drops_credentials_and_key_headers() -> None:
    async with (
        serve() as first,
        serve() as second,
        build_outbound_client(allow=["127.0.0.1"]) as client,
    ):
        response = await client.get(
            f"{first.base_url}/redirect?to={second.base_url}/ok",
            headers={**SECRETS, "X-Request-Id": "r-1"},
        )

    assert response.status_code == 200
    sent = first.requests[0][2]
    assert {name.lower(): value for name, value in SECRETS.items()}.items() <= sent.items()
    received = second.requests[0][2]
    assert not {name.lower() for name in SECRETS} & set(received)
    assert received["x-request-id"] == "r-1"
    assert received["host"] == f"127.0.0.1:{second.port}"


async def test_the_sensitive_header_list_is_configurable_and_credentials_always_go() -> None:
    async with (
        serve() as first,
        serve() as second,
        build_outbound_client(allow=["127.0.0.1"], sensitive_headers=["X-Tenant-Secret"]) as c,
    ):
        await c.get(
            f"{first.base_url}/redirect?to={second.base_url}/ok",
            headers={"x-tenant-SECRET": "t", "Authorization": "Bearer a", "X-API-Key": "k"},
        )

    received = second.requests[0][2]
    assert "x-tenant-secret" not in received and "authorization" not in received
    assert "x-api-key" not in received  # not on the allow-list either


async def test_a_cross_origin_redirect_carries_only_allow_listed_headers() -> None:
    allowed = {
        "Content-Type": "text/plain",
        "Accept": "application/json",
        "User-Agent": "station-test",
        "Idempotency-Key": "run-1/a",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    async with (
        serve() as first,
        serve() as second,
        build_outbound_client(allow=["127.0.0.1"], sensitive_headers=["User-Agent"]) as client,
    ):
        await client.get(
            f"{first.base_url}/redirect?to={second.base_url}/ok",
            headers={**allowed, "X-Custom-Token": "literal-token", "X-Tenant": "acme"},
        )

    sent = first.requests[0][2]
    assert sent["x-custom-token"] == "literal-token"
    received = second.requests[0][2]
    assert "x-custom-token" not in received and "x-tenant" not in received
    assert "user-agent" not in received  # on the allow-list, but listed as sensitive
    kept = {name.lower(): value for name, value in allowed.items() if name != "User-Agent"}
    assert kept.items() <= received.items()


async def test_a_same_origin_redirect_keeps_headers_and_body() -> None:
    async with serve() as server, build_outbound_client(allow=["127.0.0.1"]) as client:
        response = await client.post(
            f"{server.base_url}/redirect?status=307&to=/ok", headers=SECRETS, content=b"payload"
        )

    assert response.status_code == 200
    (_, _, before), (method, _, after) = server.requests
    assert method == "POST" and server.bodies == [b"payload", b"payload"]
    assert after == before
    assert {name.lower() for name in SECRETS} <= set(after)


async def test_http_to_https_on_the_same_host_is_another_origin() -> None:
    # No local TLS server here: the client's redirect rules run over httpx's mock transport.
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.scheme == "http":
            return httpx.Response(302, headers={"Location": "https://api.test/ok"})
        return httpx.Response(200)

    async with OutboundClient(
        transport=httpx.MockTransport(answer),
        timeout=httpx.Timeout(5.0),
        max_redirects=3,
        sensitive_headers=DEFAULT_SENSITIVE_HEADERS,
    ) as client:
        await client.get("http://api.test/start", headers=SECRETS)

    assert [str(request.url) for request in seen] == [
        "http://api.test/start",
        "https://api.test/ok",
    ]
    assert not {name.lower() for name in SECRETS} & set(seen[1].headers)


@pytest.mark.parametrize(
    ("method", "status"), [("POST", 307), ("POST", 308), ("PUT", 301), ("PATCH", 301)]
)
async def test_a_cross_origin_redirect_that_would_resend_the_body_is_refused(
    method: str, status: int
) -> None:
    async with (
        serve() as first,
        serve() as second,
        build_outbound_client(allow=["127.0.0.1"]) as client,
    ):
        url = f"{first.base_url}/redirect?status={status}&to={second.base_url}/ok"
        with pytest.raises(RedirectRefused) as caught:
            await client.request(method, url, content=b'{"card": "4111"}')

    assert isinstance(caught.value, OutboundBlocked)
    assert str(caught.value) == (
        f"refused 127.0.0.1: a {status} redirect from {first.base_url} to {second.base_url}"
        f" would re-send the {method} body to another origin"
    )
    assert first.bodies == [b'{"card": "4111"}']
    assert second.connections == 0


@pytest.mark.parametrize(
    ("method", "status"), [("POST", 301), ("POST", 302), ("PUT", 302), ("POST", 303)]
)
async def test_a_cross_origin_redirect_that_turns_into_a_get_is_followed_without_the_body(
    method: str, status: int
) -> None:
    async with (
        serve() as first,
        serve() as second,
        build_outbound_client(allow=["127.0.0.1"]) as client,
    ):
        response = await client.request(
            method,
            f"{first.base_url}/redirect?status={status}&to={second.base_url}/ok",
            json={"card": "4111"},
        )

    assert response.status_code == 200
    method, _, headers = second.requests[0]
    assert method == "GET" and second.bodies == [b""]
    assert "content-length" not in headers


async def test_a_cross_origin_307_without_a_body_is_followed() -> None:
    async with (
        serve() as first,
        serve() as second,
        build_outbound_client(allow=["127.0.0.1"]) as client,
    ):
        response = await client.get(
            f"{first.base_url}/redirect?status=307&to={second.base_url}/ok",
            headers={"X-API-Key": "k"},
        )

    assert (response.status_code, response.text) == (200, "hello")
    assert "x-api-key" not in second.requests[0][2]


async def test_with_redirects_off_a_cross_origin_307_is_returned_as_it_is() -> None:
    async with (
        serve() as first,
        serve() as second,
        build_outbound_client(allow=["127.0.0.1"], max_redirects=0) as client,
    ):
        response = await client.post(
            f"{first.base_url}/redirect?status=307&to={second.base_url}/ok", content=b"x"
        )
        assert response.status_code == 307
        assert response.next_request is not None
        with pytest.raises(RedirectRefused):  # nor can its next request be sent by hand
            await client.send(response.next_request)

    assert second.connections == 0


# --- the body cap ------------------------------------------------------------------------------


async def test_declared_content_length_over_the_cap_is_refused_before_reading() -> None:
    async with (
        serve() as server,
        build_outbound_client(allow=["127.0.0.1"], read_timeout=30.0) as client,
        client.stream("GET", f"{server.base_url}/declared-big") as response,
    ):
        with pytest.raises(ResponseTooLarge) as caught:
            await read_capped(response, 1000)

    assert caught.value.limit == 1000
    assert str(caught.value) == (
        "response body is larger than the 1000-byte limit (Content-Length: 1000000)"
    )
    assert response.is_closed


async def test_chunked_body_is_stopped_as_soon_as_it_passes_the_cap() -> None:
    # 4 chunks of 64 bytes and then the body never ends, so only stopping at the cap returns.
    async with (
        serve() as server,
        build_outbound_client(allow=["127.0.0.1"], read_timeout=30.0) as client,
    ):
        url = f"{server.base_url}/chunked?chunks=4&size=64&finish=0"
        with pytest.raises(ResponseTooLarge, match="200-byte limit") as caught:
            await request_capped(client, "GET", url, max_bytes=200)

    assert caught.value.limit == 200
    assert 200 < caught.value.size <= 256
    assert "content-length" not in server.requests[0][2]


async def test_body_within_the_cap_is_returned_whole() -> None:
    async with serve() as server, build_outbound_client(allow=["127.0.0.1"]) as client:
        url = f"{server.base_url}/chunked?chunks=4&size=50"
        response, body = await request_capped(client, "GET", url, max_bytes=200)

    assert response.status_code == 200
    assert body == b"y" * 200
    assert response.is_closed


async def test_content_length_exactly_at_the_cap_is_accepted() -> None:
    async with serve() as server, build_outbound_client(allow=["127.0.0.1"]) as client:
        response, body = await request_capped(client, "GET", f"{server.base_url}/ok", max_bytes=5)

    assert (response.status_code, body) == (200, b"hello")


# --- the sharded connection pool ---------------------------------------------------------------


@pytest.mark.parametrize("max_connections", [5, 12])
async def test_calls_spread_over_the_pool_shards_up_to_max_connections(
    max_connections: int,
) -> None:
    held = asyncio.Event()
    in_flight = 0
    most = 0

    async def hold(
        path: str, query: Query, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await held.wait()
        in_flight -= 1
        writer.write(_head("200 OK", {"Content-Length": "2", "Connection": "close"}) + b"ok")

    async with (
        serve(hold) as server,
        build_outbound_client(allow=["127.0.0.1"], max_connections=max_connections) as client,
    ):
        calls = [asyncio.create_task(client.get(f"{server.base_url}/{i}")) for i in range(12)]
        while in_flight < max_connections:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # room for any call past the bound to arrive
        held.set()
        responses = await asyncio.gather(*calls)

        assert [response.status_code for response in responses] == [200] * 12
        # Every connection of every shard was used, and never more than max_connections.
        assert most == max_connections
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert isinstance(pool, ShardedPool)
        assert len(pool.pools) == -(-max_connections // CONNECTIONS_PER_SHARD)


async def test_a_shard_counts_a_failed_call_as_over() -> None:
    async with serve() as server, build_outbound_client(allow=["127.0.0.1"]) as client:
        port = server.port
    # The server is gone: every call fails to connect.
    async with build_outbound_client(allow=["127.0.0.1"]) as client:
        for _ in range(3):
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/ok")
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert pool._open == [0] * len(pool.pools)
    async with serve() as server, build_outbound_client(allow=["127.0.0.1"]) as client:
        for _ in range(3):
            response = await client.get(f"{server.base_url}/ok")
            assert response.text == "hello"
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert pool._open == [0] * len(pool.pools)
