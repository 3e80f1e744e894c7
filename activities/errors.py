"""The one place that decides whether a failed call is worth retrying.

Every activity turns its failures into an `ApplicationError` through this module, and
Temporal's retry policy does the retrying. The taxonomy, by `ApplicationError.type`:

    retryable (Temporal retries with backoff until the policy's attempts run out)
    ├── HttpServerError        5xx responses
    ├── HttpTimeoutStatus      408 Request Timeout
    ├── HttpRateLimited        429 Too Many Requests (Retry-After honoured)
    ├── HttpUnavailable        503 Service Unavailable (Retry-After honoured)
    ├── TransportError         connect/read/write failures and timeouts, DNS failures
    ├── LlmProviderError       an LLM API's 408, 429, 5xx and 529 "overloaded", and connection
    │                          failures and timeouts (Retry-After / retry-after-ms honoured)
    └── LlmUnparseableAnswer   a condition verdict that is neither JSON nor true/false/yes/no;
                               another sample of the model may well answer properly
    non-retryable (the step fails at once)
    ├── HttpClientError        other 4xx responses
    ├── InvalidRequest         bad URL, non-ASCII header, too many redirects, template that
    │                          cannot render
    ├── InvalidResponse        a body that cannot be decoded (bad gzip, wrong charset)
    ├── OutboundBlocked        destination refused by the outbound guard
    ├── ResponseTooLarge       body over the configured cap
    ├── LlmRequestRejected     an LLM API's other 4xx (bad key, bad model, bad request), or a
    │                          refusal (the same prompt would be refused again)
    └── ProviderNotConfigured  no key and no base URL for the requested provider
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from datetime import UTC, timedelta
from typing import Any

from temporalio.exceptions import ApplicationError

RETRYABLE_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))

NON_RETRYABLE_TYPES = [
    "HttpClientError",
    "InvalidRequest",
    "InvalidResponse",
    "OutboundBlocked",
    "ResponseTooLarge",
    "LlmRequestRejected",
    "ProviderNotConfigured",
]


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS


def retry_after(headers: Mapping[str, str] | None) -> timedelta | None:
    """Parse a `Retry-After` header (seconds or an HTTP date) into a delay."""
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        # RFC 5322's "-0000" zone parses as naive; HTTP dates are always UTC.
        moment = moment.replace(tzinfo=UTC)
    return timedelta(seconds=max(0.0, moment.timestamp() - time.time()))


def status_error_type(status: int) -> str:
    if status == 408:
        return "HttpTimeoutStatus"
    if status == 429:
        return "HttpRateLimited"
    if status == 503:
        return "HttpUnavailable"
    if status >= 500:
        return "HttpServerError"
    return "HttpClientError"


def http_status_error(
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> ApplicationError:
    """An `ApplicationError` for an HTTP response whose status is an error."""
    retryable = is_retryable_status(status)
    return ApplicationError(
        message,
        {"status": status, **(details or {})},
        type=status_error_type(status),
        non_retryable=not retryable,
        next_retry_delay=retry_after(headers) if status in (429, 503) else None,
    )


def transport_error(message: str, details: dict[str, Any] | None = None) -> ApplicationError:
    return ApplicationError(message, details or {}, type="TransportError")


def non_retryable(
    error_type: str, message: str, details: dict[str, Any] | None = None
) -> ApplicationError:
    return ApplicationError(message, details or {}, type=error_type, non_retryable=True)


def llm_retry_after(headers: Mapping[str, str] | None) -> timedelta | None:
    """OpenAI's `retry-after-ms` when present (finer grained), else the standard Retry-After."""
    millis = (
        next((v for k, v in headers.items() if k.lower() == "retry-after-ms"), None)
        if headers
        else None
    )
    if millis:
        try:
            return timedelta(milliseconds=max(0.0, float(millis)))
        except ValueError:
            pass
    return retry_after(headers)


def llm_status_error(
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> ApplicationError:
    """An `ApplicationError` for an LLM API's error status: `LlmProviderError` when a later
    attempt may succeed (408, 429, 5xx, 529), else `LlmRequestRejected`."""
    if is_retryable_status(status):
        return ApplicationError(
            message,
            details or {},
            type="LlmProviderError",
            next_retry_delay=llm_retry_after(headers),
        )
    return non_retryable("LlmRequestRejected", message, details)


def llm_unavailable(message: str, details: dict[str, Any] | None = None) -> ApplicationError:
    """A retryable `LlmProviderError` for an LLM API that could not be reached or answered
    nothing usable."""
    return ApplicationError(message, details or {}, type="LlmProviderError")
