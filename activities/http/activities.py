"""The one HTTP-call activity (DAG steps, endpoint instructions, routers, the proxy API) and
webhook delivery, both through the guarded outbound client.

Secrets are filled in here, just before sending, from the calling tenant's own and the shared
ones (`activities.http.secrets`), and nothing this module returns or raises holds one: the
response's body, headers and final URL lose every value the request sent before they leave
the activity (a target may echo them), every message names the call's URL as scheduled (with
its `{{secrets.…}}` placeholders), passes through `redact_urls` and then through the tenant's
`TenantSecrets.redact`, and failures are raised without the library exception as their cause,
whose text would otherwise travel into history as the failure's cause.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import heartbeating, retry_delay_ceiling
from activities.http.cache import cached_result, remember
from activities.http.models import (
    CALL_HTTP,
    DEFAULT_TENANT,
    IDEMPOTENCY_KEY_HEADER,
    SEND_WEBHOOK,
    HttpCall,
    HttpResult,
    WebhookDelivery,
    WebhookReceipt,
    http_cache_key,
)
from activities.http.outbound.body import ResponseTooLarge, read_capped
from activities.http.outbound.policy import OutboundBlocked
from activities.http.outbound.redirects import SECRET_HEADERS
from activities.http.secrets import (
    ResolvedRequest,
    Secrets,
    TenantSecrets,
    UnknownSecret,
)
from activities.http.signing import WebhookSigner
from activities.store.activities import write_values
from activities.store.models import OutputTarget, output_json
from kernel import errors
from kernel.codec import EncryptionCodec
from kernel.errors import ErrorType, WorkflowStationError
from kernel.limits import MAX_JSON_DEPTH, json_depth
from kernel.redact import MASK, redact_url, redact_urls
from kernel.responses import main_value

log = logging.getLogger(__name__)

#: One try at writing a step's outputs; past it (or on any Redis error) the workflow writes
#: them itself, with its store retry window.
OUTPUT_WRITE_TIMEOUT_SECONDS = 5.0


def _request_content(call: HttpCall, body: Any) -> dict[str, Any]:
    if not call.send_body or body is None:
        return {}
    if isinstance(body, str | bytes):
        return {"content": body}
    return {"json": body}


def _query_params(query: dict[str, Any]) -> dict[str, str]:
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in query.items()
        if value is not None
    }


class UndecodableBody(WorkflowStationError):
    """A JSON body the workflow could not carry: nested deeper than `MAX_JSON_DEPTH`."""

    error_type = ErrorType.INVALID_RESPONSE


def parse_body(raw: bytes, content_type: str) -> tuple[Any, bool]:
    """JSON bodies keep their structure; anything else stays text.

    Raises:
        UndecodableBody: JSON nested so deeply that decoding it in the workflow would fail
            every workflow task (the run could never close).
    """
    text = raw.decode("utf-8", errors="replace")
    if "json" in content_type or not content_type:
        try:
            value = json.loads(text)
        except ValueError:
            return text, False
        except RecursionError:
            value = None
            depth = MAX_JSON_DEPTH + 1
        else:
            depth = json_depth(value)
        if depth > MAX_JSON_DEPTH:
            raise UndecodableBody(f"the JSON body nests more than {MAX_JSON_DEPTH} levels deep")
        return value, True
    return text, False


def _snippet(body: Any, limit: int = 500) -> str:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


def _path_of(url: str) -> str:
    try:
        return urlsplit(url).path
    except ValueError:
        return ""


#: What a request can fail with before it has a response; `HttpActivities._failure` says why.
_REQUEST_FAILURES = (
    OutboundBlocked,
    ResponseTooLarge,
    httpx.InvalidURL,
    httpx.TooManyRedirects,
    httpx.DecodingError,
    httpx.TransportError,
    UnicodeEncodeError,
)


@dataclass(frozen=True)
class _Shown:
    """How one call's messages name it: `url`, text never to be repeated (`hidden`), and the
    secrets of the tenant whose call it is, never to be repeated either."""

    url: str
    secrets: TenantSecrets
    hidden: tuple[str, ...] = ()


async def store_outputs(
    redis: Redis,
    target: OutputTarget,
    body: Any,
    label: str,
    codec: EncryptionCodec | None = None,
) -> list[str]:
    """Write a step's outputs (`OutputTarget`); the keys written, none if Redis failed.

    A Redis failure does not fail the activity: retrying it would send the request again (a
    second side effect at the target, for a store that is down). The call's result is
    returned as it is, and the workflow, seeing nothing stored, writes the outputs with its
    own retry window (STORE_RETRY_WINDOW_SECONDS), as it did before the write moved here.
    """
    value = main_value(body)
    values = dict.fromkeys(target.keys, value)
    held = bool(target.keys) and value is body
    if target.result_key and not held and len(output_json(body)) > target.result_over_bytes:
        values[target.result_key] = body
    if not values:
        return []
    try:
        async with asyncio.timeout(OUTPUT_WRITE_TIMEOUT_SECONDS):
            await write_values(redis, values, target.ttl_seconds, codec)
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("%s: outputs not written, the run writes them: %r", label, exc)
        return []
    return list(values)


class HttpActivities:
    """The HTTP and webhook activities over one shared outbound client.

    Args:
        client: The guarded outbound client (`activities.http.outbound`).
        max_response_bytes: Larger response bodies fail the call (`ResponseTooLarge`).
        secrets: What `{{secrets.NAME}}` stands for on this worker; none by default.
        webhook_signer: Signs webhook deliveries (Standard Webhooks); none: unsigned.
        redis: Where a DAG step's outputs are written (`HttpCall.outputs`); none: the
            workflow writes them.
        codec: Seals the outputs it writes (PAYLOAD_ENCRYPTION_KEY); none: plain JSON.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        max_response_bytes: int,
        secrets: Secrets | None = None,
        webhook_signer: WebhookSigner | None = None,
        redis: Redis | None = None,
        codec: EncryptionCodec | None = None,
    ) -> None:
        self._client = client
        self._redis = redis
        self._codec = codec
        self._max_response_bytes = max_response_bytes
        self._secrets = secrets or Secrets()
        #: No signer: deliveries still carry `webhook-id` and `webhook-timestamp`, unsigned.
        self._signer = webhook_signer or WebhookSigner([])

    def _timeout(self, seconds: float) -> httpx.Timeout:
        """The call's own timeout, but connecting keeps the client's shorter bound
        (OUTBOUND_CONNECT_TIMEOUT_SECONDS): an unreachable host should fail, and be retried,
        long before a slow answer would."""
        connect = self._client.timeout.connect
        return httpx.Timeout(seconds, connect=min(connect, seconds) if connect else seconds)

    def _scrub(self, text: str, shown: _Shown) -> str:
        """A message as it may be written anywhere: URLs redacted, no secret value."""
        for hidden in shown.hidden:
            text = text.replace(hidden, MASK)
        return shown.secrets.redact(redact_urls(text))

    def _failure(
        self, exc: Exception, call: HttpCall, shown: _Shown, attempt: int
    ) -> ApplicationError:
        """Classify a request that got no response (the tree in `kernel.errors`)."""
        who = f"{call.label}: " if call.label else ""
        what = f"{who}{call.method} {shown.url}"
        details = {"attempt": attempt}
        retryable = False
        error_type = ErrorType.INVALID_REQUEST
        if isinstance(exc, UnknownSecret | OutboundBlocked | ResponseTooLarge):
            error_type, message = exc.error_type, f"{who}{exc}"
        elif isinstance(exc, UndecodableBody):
            error_type, message = exc.error_type, f"{what}: {exc}"
        elif isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            message = f"{who}invalid URL {shown.url!r}: {exc}"
        elif isinstance(exc, httpx.TooManyRedirects):
            message = f"{what}: {exc} (OUTBOUND_MAX_REDIRECTS)"
        elif isinstance(exc, UnicodeEncodeError):
            message = f"{who}a header of {call.method} {shown.url} is not ASCII: {exc}"
        elif isinstance(exc, httpx.DecodingError):
            error_type = ErrorType.INVALID_RESPONSE
            message = f"{what}: the response body cannot be decoded: {exc}"
        elif isinstance(exc, httpx.TimeoutException):
            limit = self._timeout(call.timeout_seconds)
            seconds = limit.connect if isinstance(exc, httpx.ConnectTimeout) else limit.read
            retryable = True
            message = f"{what} timed out after {seconds:g}s ({type(exc).__name__})"
        else:
            retryable = True
            message = f"{what} failed: {type(exc).__name__}: {exc}"
        if retryable:
            return errors.transport_error(self._scrub(message, shown), details)
        return errors.non_retryable(error_type, self._scrub(message, shown), details)

    def _resolve(self, call: HttpCall, shown: _Shown, attempt: int) -> ResolvedRequest:
        try:
            return shown.secrets.resolve(call)
        except UnknownSecret as exc:
            raise self._failure(exc, call, shown, attempt) from None

    async def _send(self, call: HttpCall, shown: _Shown, attempt: int) -> HttpResult:
        started = time.monotonic()
        resolved = self._resolve(call, shown, attempt)
        try:
            request = self._client.build_request(
                call.method,
                resolved.url,
                headers=resolved.headers,
                params=_query_params(resolved.query) or None,
                timeout=self._timeout(call.timeout_seconds),
                # Headers holding a secret are dropped on a redirect to another origin.
                extensions={SECRET_HEADERS: resolved.secret_headers},
                **_request_content(call, resolved.body),
            )
            response = await self._client.send(request, stream=True)
            try:
                raw = await read_capped(response, self._max_response_bytes)
            finally:
                await response.aclose()
        except _REQUEST_FAILURES as exc:
            # Not `from exc`: the library's message may quote the URL as sent, secrets and all.
            raise self._failure(exc, call, shown, attempt) from None
        try:
            body, is_json = parse_body(raw, response.headers.get("content-type", ""))
        except UndecodableBody as exc:
            raise self._failure(exc, call, shown, attempt) from None
        # What came back may repeat what was sent (an echoing target): the values go here,
        # before the result is recorded anywhere (history, outputs, status, events, webhooks).
        return HttpResult(
            status=response.status_code,
            reason=resolved.redact(response.reason_phrase),
            headers=resolved.redact(dict(response.headers)),
            body=resolved.redact(body),
            is_json=is_json,
            url=resolved.redact(str(response.url)),
            attempt=attempt,
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    async def _call(self, call: HttpCall, shown: _Shown, attempt: int) -> HttpResult:
        """Make one request; error statuses become classified `ApplicationError`s.

        Args:
            call: The request, with its `{{secrets.…}}` placeholders still in.
            shown: How messages name the call.
            attempt: Which attempt this is, for the result and failure details.
        """
        result = await heartbeating(self._send(call, shown, attempt))
        status = result.status
        if status >= 400 and (call.fail_on_client_error or errors.is_retryable_status(status)):
            who = f"{call.label}: " if call.label else ""
            snippet = self._scrub(_snippet(result.body), shown)
            raise errors.http_status_error(
                status,
                self._scrub(
                    f"{who}{call.method} {shown.url} answered {status} {result.reason}:", shown
                )
                + f" {snippet}",
                headers=result.headers,
                details={"attempt": result.attempt, "body": snippet},
                retry_ceiling=retry_delay_ceiling(),
            )
        return result

    @activity.defn(name=CALL_HTTP)
    async def call_http(self, call: HttpCall) -> HttpResult:
        """Make one request; error statuses become classified `ApplicationError`s. A DAG
        step's outputs are written to Redis here once the call succeeded (`call.outputs`)."""
        return await self.attempt(call, activity.info().attempt)

    async def attempt(self, call: HttpCall, attempt: int) -> HttpResult:
        """One attempt of `call`, as `call_http` makes it: also for the DAG runner's
        segments (`workflows.dag.segment_activity`), which retry their steps themselves."""
        key = http_cache_key(call)
        cache = self._redis if call.cache is not None else None
        result = await cached_result(cache, call) if cache is not None else None
        if result is None:
            shown = _Shown(redact_url(call.url), self._secrets.for_tenant(call.tenant))
            result = await self._call(call, shown, attempt)
            if cache is not None:
                await remember(cache, call, result)
        result.request_key = key
        if call.outputs is not None and self._redis is not None:
            result.stored = await store_outputs(
                self._redis, call.outputs, result.body, call.label, self._codec
            )
        return result

    @activity.defn(name=SEND_WEBHOOK)
    async def send_webhook(self, delivery: WebhookDelivery) -> WebhookReceipt:
        """POST one event, signed (Standard Webhooks); the caller's retry policy bounds how
        long delivery is tried.

        The body is serialized here, once, and the signature covers exactly those bytes; each
        attempt is signed with its own timestamp, so a receiver's replay window (5 minutes in
        the Standard Webhooks libraries) holds for late retries too.

        A webhook URL is often a credential in itself (its path a token), so messages show
        only its origin.
        """
        # The tenant goes under the signature, so a receiver sharing the operator's secret
        # can still tell which tenant's run sent it (events of runs from before the event
        # named it too).
        tenant = delivery.tenant or DEFAULT_TENANT
        event = {**delivery.event, "tenant": tenant}
        event_id = str(event.get("event_id", ""))
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        timeout = activity.info().start_to_close_timeout
        call = HttpCall(
            method="POST",
            url=delivery.url,
            headers={
                "Content-Type": "application/json",
                "X-Workflow-Station-Event": str(event.get("event", "")),
                IDEMPOTENCY_KEY_HEADER: event_id,
                **self._signer.headers(event_id, int(time.time()), body, tenant),
            },
            body=body,
            send_body=True,
            timeout_seconds=(timeout.total_seconds() if timeout else 10.0),
            label=f"webhook {event.get('event')}",
        )
        path = _path_of(delivery.url)
        shown = _Shown(
            redact_url(delivery.url, keep_path=False),
            self._secrets.for_tenant(delivery.tenant),
            hidden=(path,) if len(path) > 1 else (),
        )
        result = await self._call(call, shown, activity.info().attempt)
        return WebhookReceipt(status=result.status, attempt=result.attempt)
