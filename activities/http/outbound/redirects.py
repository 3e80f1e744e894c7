"""The outbound client: no cookies kept, and credentials, secrets and bodies left at their
origin when a response redirects elsewhere.

The client keeps no cookies. Its jar drops every cookie a response sets, so run A's
``Set-Cookie: sid=…`` is never sent with run B's call, with a webhook delivery, or even with
the next redirect hop of the same call. A ``Cookie`` header the call sets itself is sent.

Redirects are followed up to ``OUTBOUND_MAX_REDIRECTS`` times, each hop's connection checked
like the first one's (`activities.http.outbound.backend`). A hop to the same origin (scheme,
host and port all equal) keeps the request as it was, the call's own ``Cookie`` header
included. A hop to another origin, http to https on the same host too:

* keeps only the headers of `CROSS_ORIGIN_HEADERS`: content type, ``Accept``, the user
  agent, the idempotency key and trace headers (and what httpx sets for the hop itself,
  ``Host`` and the body's length). A call can carry a token in any header it likes
  (``X-Custom-Token``), so no list of sensitive names could be complete: everything else is
  left at the origin the call named. Even from the allow-list, ``OUTBOUND_SENSITIVE_HEADERS``
  and every header whose value came from a ``{{secrets.NAME}}`` (the HTTP activity names them
  in the request's `SECRET_HEADERS` extension) are dropped. Once dropped they stay dropped,
  even if a later hop comes back;
* never carries the request body. A 302 or 303, and a 301 answering a POST, become a bodiless
  GET, as in browsers. A redirect that would re-send the body to the other origin (a 307 or
  308, or a 301 answering a PUT, PATCH or DELETE) is not followed: it fails with
  `RedirectRefused`. Following it would hand the body to a host the call never named, and
  dropping the body would quietly send a different request from the one the call describes;
  the error names both origins, so the step's URL can be updated to the new one.
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import Iterable

import httpx

from activities.http.outbound.policy import OutboundBlocked

#: Dropped from every redirect to another origin, whatever the settings say.
CREDENTIAL_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")

#: The only headers a redirect to another origin carries on (lower-cased): what describes the
#: body and the answer wanted, who calls, the idempotency key and the trace. httpx sets
#: ``Host``, ``Content-Length`` and ``Transfer-Encoding`` for each hop itself.
CROSS_ORIGIN_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "content-type",
        "user-agent",
        "idempotency-key",
        "traceparent",
        "tracestate",
        "baggage",
        "x-request-id",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
    }
)

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

#: A request extension: the lower-cased names of headers whose values hold secrets, dropped
#: like `CREDENTIAL_HEADERS` on a redirect to another origin (httpx carries a request's
#: extensions to each redirect hop).
SECRET_HEADERS = "workflow_station.secret_headers"

#: Set by `OutboundClient` on a redirect request that must not be sent (a `RedirectRefused`);
#: the transport raises it when, and only if, the redirect is followed.
REFUSED_REDIRECT = "workflow_station.refused_redirect"


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


class _NoCookieJar(http.cookiejar.CookieJar):
    """A cookie jar that never holds a cookie.

    Every way into a `CookieJar` (``extract_cookies`` on a response, ``set_cookie_if_ok``,
    `httpx.Cookies.set`) ends in `set_cookie`, so refusing there keeps the jar empty for good,
    and httpx, which builds each request's ``Cookie`` header from the jar, adds none.
    """

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        """Drop `cookie`."""


_DEFAULT_PORTS = {"http": 80, "https": 443}


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
        sensitive_headers: Headers dropped on a redirect to another origin even when on
            `CROSS_ORIGIN_HEADERS`.
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
        dropped = self.cross_origin_dropped | request.extensions.get(SECRET_HEADERS, frozenset())
        for name in {name.lower() for name in redirect.headers}:
            if name not in CROSS_ORIGIN_HEADERS or name in dropped:
                redirect.headers.pop(name, None)
        if _carries_body(redirect):
            # Raised by the transport, not here: with redirects off, this request is only
            # offered as `response.next_request`, and the redirect response is the answer.
            redirect.extensions[REFUSED_REDIRECT] = RedirectRefused(
                response.status_code, redirect.method, request.url, redirect.url
            )
        return redirect
