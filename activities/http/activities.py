"""The one HTTP-call activity (DAG steps, endpoint instructions, routers, the proxy API) and
webhook delivery, both through the guarded outbound client."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import errors
from activities.context import heartbeating, retry_delay_ceiling
from activities.errors import ErrorType, WorkflowStationError
from activities.http.models import (
    CALL_HTTP,
    IDEMPOTENCY_KEY_HEADER,
    SEND_WEBHOOK,
    HttpCall,
    HttpResult,
    WebhookDelivery,
    WebhookReceipt,
)
from activities.http.outbound import OutboundBlocked, ResponseTooLarge, read_capped
from activities.http.signing import WebhookSigner
from activities.limits import MAX_JSON_DEPTH, json_depth


def _request_content(call: HttpCall) -> dict[str, Any]:
    if not call.send_body or call.body is None:
        return {}
    if isinstance(call.body, str | bytes):
        return {"content": call.body}
    return {"json": call.body}


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


class HttpActivities:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        max_response_bytes: int,
        webhook_signer: WebhookSigner | None = None,
    ) -> None:
        self._client = client
        self._max_response_bytes = max_response_bytes
        #: No signer: deliveries still carry `webhook-id` and `webhook-timestamp`, unsigned.
        self._signer = webhook_signer or WebhookSigner([])

    def _timeout(self, seconds: float) -> httpx.Timeout:
        """The call's own timeout, but connecting keeps the client's shorter bound
        (OUTBOUND_CONNECT_TIMEOUT_SECONDS): an unreachable host should fail, and be retried,
        long before a slow answer would."""
        connect = self._client.timeout.connect
        return httpx.Timeout(seconds, connect=min(connect, seconds) if connect else seconds)

    def _failure(self, exc: Exception, call: HttpCall, attempt: int) -> ApplicationError:
        """Classify a request that got no response (the tree in `activities.errors`)."""
        who = f"{call.label}: " if call.label else ""
        what = f"{who}{call.method} {call.url}"
        details = {"attempt": attempt}
        if isinstance(exc, OutboundBlocked | ResponseTooLarge):
            return errors.non_retryable(exc.error_type, f"{who}{exc}", details)
        if isinstance(exc, UndecodableBody):
            return errors.non_retryable(exc.error_type, f"{what}: {exc}", details)
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            message = f"{who}invalid URL {call.url!r}: {exc}"
            return errors.non_retryable(ErrorType.INVALID_REQUEST, message, details)
        if isinstance(exc, httpx.TooManyRedirects):
            message = f"{what}: {exc} (OUTBOUND_MAX_REDIRECTS)"
            return errors.non_retryable(ErrorType.INVALID_REQUEST, message, details)
        if isinstance(exc, UnicodeEncodeError):
            message = f"{who}a header of {call.method} {call.url} is not ASCII: {exc}"
            return errors.non_retryable(ErrorType.INVALID_REQUEST, message, details)
        if isinstance(exc, httpx.DecodingError):
            message = f"{what}: the response body cannot be decoded: {exc}"
            return errors.non_retryable(ErrorType.INVALID_RESPONSE, message, details)
        if isinstance(exc, httpx.TimeoutException):
            limit = self._timeout(call.timeout_seconds)
            seconds = limit.connect if isinstance(exc, httpx.ConnectTimeout) else limit.read
            message = f"{what} timed out after {seconds:g}s ({type(exc).__name__})"
            return errors.transport_error(message, details)
        return errors.transport_error(f"{what} failed: {type(exc).__name__}: {exc}", details)

    async def _send(self, call: HttpCall) -> HttpResult:
        attempt = activity.info().attempt
        started = time.monotonic()
        try:
            request = self._client.build_request(
                call.method,
                call.url,
                headers=call.headers,
                params=_query_params(call.query) or None,
                timeout=self._timeout(call.timeout_seconds),
                **_request_content(call),
            )
            response = await self._client.send(request, stream=True)
            try:
                raw = await read_capped(response, self._max_response_bytes)
            finally:
                await response.aclose()
        except _REQUEST_FAILURES as exc:
            raise self._failure(exc, call, attempt) from exc
        try:
            body, is_json = parse_body(raw, response.headers.get("content-type", ""))
        except UndecodableBody as exc:
            raise self._failure(exc, call, attempt) from exc
        return HttpResult(
            status=response.status_code,
            reason=response.reason_phrase,
            headers=dict(response.headers),
            body=body,
            is_json=is_json,
            url=str(response.url),
            attempt=attempt,
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    @activity.defn(name=CALL_HTTP)
    async def call_http(self, call: HttpCall) -> HttpResult:
        """Make one request; error statuses become classified `ApplicationError`s."""
        result = await heartbeating(self._send(call))
        status = result.status
        if status >= 400 and (call.fail_on_client_error or errors.is_retryable_status(status)):
            who = f"{call.label}: " if call.label else ""
            raise errors.http_status_error(
                status,
                f"{who}{call.method} {call.url} answered {status} {result.reason}:"
                f" {_snippet(result.body)}",
                headers=result.headers,
                details={"attempt": result.attempt, "body": _snippet(result.body)},
                retry_ceiling=retry_delay_ceiling(),
            )
        return result

    @activity.defn(name=SEND_WEBHOOK)
    async def send_webhook(self, delivery: WebhookDelivery) -> WebhookReceipt:
        """POST one event, signed (Standard Webhooks); the caller's retry policy bounds how
        long delivery is tried.

        The body is serialized here, once, and the signature covers exactly those bytes; each
        attempt is signed with its own timestamp, so a receiver's replay window (5 minutes in
        the Standard Webhooks libraries) holds for late retries too.
        """
        event = delivery.event
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
                **self._signer.headers(event_id, int(time.time()), body),
            },
            body=body,
            send_body=True,
            timeout_seconds=(timeout.total_seconds() if timeout else 10.0),
            label=f"webhook {event.get('event')}",
        )
        result = await self.call_http(call)
        return WebhookReceipt(status=result.status, attempt=result.attempt)
