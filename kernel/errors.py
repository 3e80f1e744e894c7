"""The one vocabulary of failures, and the one place that builds `ApplicationError`s.

Activities turn their failures into `ApplicationError`s through this module, workflows fail
runs through it, and Temporal's retry policy does the retrying. The taxonomy, by
`ApplicationError.type` (`ErrorType`):

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
    ├── HttpClientError        other 4xx responses                                     (benign)
    ├── InvalidRequest         bad URL, non-ASCII header, too many redirects, template that
    │                          cannot render, a call an external proxy cannot take     (benign)
    ├── InvalidResponse        a body that cannot be decoded (bad gzip, wrong charset)
    ├── OutboundBlocked        destination refused by the outbound guard, or a redirect
    │                          that would re-send the body to another origin          (benign)
    ├── ResponseTooLarge       body over the configured cap
    ├── LlmRequestRejected     an LLM API's other 4xx (bad key, bad model, bad request), or a
    │                          refusal (the same prompt would be refused again)
    ├── ProviderNotConfigured  no key and no base URL for the requested provider
    ├── InvalidModelOutput     an LLM step's answer that does not validate against its
    │                          `output_schema` (structured output was asked for already)
    ├── TenantBudgetExceeded   the tenant's LLM calls today cost more than its TENANT_BUDGETS
    └── UnknownSecret          a `{{secrets.NAME}}` the worker has no value for

    failures decided in workflow code (never retried: the same input fails the same way)
    ├── TemplateError          a `{{…}}` placeholder that cannot be resolved            (benign)
    ├── InvalidCondition       a condition that is not in the condition language      (benign)
    ├── UnknownEndpoint        an `endpointUrl` that names no endpoint worker          (benign)
    ├── InvalidInstruction     an instruction of no known type                        (benign)
    ├── ProxyResponseInvalid   an external endpoint proxy answered in another format
    ├── EndpointFailed         an external endpoint proxy reported a failed call
    ├── StepBudgetExceeded     more executions than INSTRUCTION_STEP_BUDGET
    ├── TokenBudgetExceeded    the run's LLM calls spent more than LLM_TOKEN_BUDGET_PER_RUN
    ├── Timeout                an activity attempt ran past its timeout (retries used up)
    ├── Cancelled              the step was running when the run was cancelled
    ├── Rejected               a person rejected an approval step (or its wait ran out
    │                          with `on_timeout: reject`)                              (benign)
    ├── ApprovalTimedOut       an approval step's wait ran out with `on_timeout: fail`
    ├── NotWaiting             an approval for a step that is not waiting for one     (benign)
    ├── InvalidApprovalData    an approval's `data` that breaks the step's schema     (benign)
    └── BudgetExceeded         an LLM call would take the run past its `budget`, or
                               a person refused to raise it

    raised while reading a payload (by any process; a domain exception, not an
    ApplicationError: a worker replaying a run would turn that into a nondeterminism error)
    ├── PayloadExpired         a large payload's blob is gone from Redis (its TTL,
    │                          PAYLOAD_BLOB_TTL_SECONDS, ran out): no retry can read it
    └── PayloadUndecodable     a payload the converter cannot read back (a value nested
                               too deep for the JSON parser): a workflow input like that
                               fails its run at once, not its task for ever

    run outcomes (the workflow's own failure; details hold the partial result)
    ├── InvalidPipeline        a DAG payload that fails validation                    (benign)
    ├── PipelineFailed         a DAG step failed for good
    ├── InstructionFailed      an instruction step failed for good
    └── TimedOut               the run exceeded its execution timeout

Every message is passed through `kernel.redact.redact_urls`: a URL quoted in a message
keeps its host and path but not its user-info, query values or fragment, wherever the message
goes next (history, status, webhooks, logs).

Benign failures are the caller's doing (a 4xx, an invalid payload): they are marked
`ApplicationErrorCategory.BENIGN`, so the SDK logs them quietly and metrics do not count
them as engine errors. Domain exceptions raised by pure code derive from
`WorkflowStationError` and name their `ErrorType`.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from datetime import UTC, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from kernel.redact import redact_urls


class ErrorType(StrEnum):
    """Every `ApplicationError.type` (and step/run error `type`) the engine produces."""

    HTTP_SERVER_ERROR = "HttpServerError"
    HTTP_TIMEOUT_STATUS = "HttpTimeoutStatus"
    HTTP_RATE_LIMITED = "HttpRateLimited"
    HTTP_UNAVAILABLE = "HttpUnavailable"
    TRANSPORT_ERROR = "TransportError"
    LLM_PROVIDER_ERROR = "LlmProviderError"
    LLM_UNPARSEABLE_ANSWER = "LlmUnparseableAnswer"

    HTTP_CLIENT_ERROR = "HttpClientError"
    INVALID_REQUEST = "InvalidRequest"
    INVALID_RESPONSE = "InvalidResponse"
    OUTBOUND_BLOCKED = "OutboundBlocked"
    RESPONSE_TOO_LARGE = "ResponseTooLarge"
    LLM_REQUEST_REJECTED = "LlmRequestRejected"
    PROVIDER_NOT_CONFIGURED = "ProviderNotConfigured"
    INVALID_MODEL_OUTPUT = "InvalidModelOutput"
    TENANT_BUDGET_EXCEEDED = "TenantBudgetExceeded"
    PAYLOAD_EXPIRED = "PayloadExpired"
    PAYLOAD_UNDECODABLE = "PayloadUndecodable"
    UNKNOWN_SECRET = "UnknownSecret"

    TEMPLATE_ERROR = "TemplateError"
    INVALID_CONDITION = "InvalidCondition"
    UNKNOWN_ENDPOINT = "UnknownEndpoint"
    INVALID_INSTRUCTION = "InvalidInstruction"
    PROXY_RESPONSE_INVALID = "ProxyResponseInvalid"
    ENDPOINT_FAILED = "EndpointFailed"
    STEP_BUDGET_EXCEEDED = "StepBudgetExceeded"
    TOKEN_BUDGET_EXCEEDED = "TokenBudgetExceeded"
    TIMEOUT = "Timeout"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"
    APPROVAL_TIMED_OUT = "ApprovalTimedOut"
    NOT_WAITING = "NotWaiting"
    INVALID_APPROVAL_DATA = "InvalidApprovalData"
    BUDGET_EXCEEDED = "BudgetExceeded"

    INVALID_PIPELINE = "InvalidPipeline"
    PIPELINE_FAILED = "PipelineFailed"
    INSTRUCTION_FAILED = "InstructionFailed"
    #: A `map_over` step whose failed items passed its tolerance (`workflows.dag.mapping`).
    MAP_TOLERANCE_EXCEEDED = "MapToleranceExceeded"
    TIMED_OUT = "TimedOut"

    #: A failure with no type of ours (an unexpected exception), named by its class.
    UNKNOWN = "Unknown"


RETRYABLE_TYPES = frozenset(
    {
        ErrorType.HTTP_SERVER_ERROR,
        ErrorType.HTTP_TIMEOUT_STATUS,
        ErrorType.HTTP_RATE_LIMITED,
        ErrorType.HTTP_UNAVAILABLE,
        ErrorType.TRANSPORT_ERROR,
        ErrorType.LLM_PROVIDER_ERROR,
        ErrorType.LLM_UNPARSEABLE_ANSWER,
    }
)

#: For retry policies: every type an activity raises that retrying cannot fix.
NON_RETRYABLE_TYPES = [str(kind) for kind in ErrorType if kind not in RETRYABLE_TYPES]

#: The caller's doing, not the engine's: logged and counted as benign.
BENIGN_TYPES = frozenset(
    {
        ErrorType.HTTP_CLIENT_ERROR,
        ErrorType.INVALID_REQUEST,
        ErrorType.OUTBOUND_BLOCKED,
        ErrorType.TEMPLATE_ERROR,
        ErrorType.INVALID_CONDITION,
        ErrorType.UNKNOWN_ENDPOINT,
        ErrorType.INVALID_INSTRUCTION,
        ErrorType.INVALID_PIPELINE,
        ErrorType.REJECTED,
        ErrorType.NOT_WAITING,
        ErrorType.INVALID_APPROVAL_DATA,
    }
)

RETRYABLE_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))

#: However long a server asks us to wait, Temporal is never told to wait longer than this.
MAX_RETRY_AFTER = timedelta(hours=1)


class WorkflowStationError(Exception):
    """Base of the engine's domain exceptions; `error_type` is the type a step fails with."""

    error_type: ClassVar[ErrorType] = ErrorType.UNKNOWN


class PayloadUndecodable(WorkflowStationError):
    """A payload the data converter cannot decode into its type. Retrying cannot help (the
    same bytes fail the same way), so the workers name it in `workflow_failure_exception_types`:
    the run fails with this type instead of its workflow task failing on every retry."""

    error_type = ErrorType.PAYLOAD_UNDECODABLE


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _capped(delay: timedelta, ceiling: timedelta | None) -> timedelta:
    return min(delay, MAX_RETRY_AFTER, ceiling if ceiling is not None else MAX_RETRY_AFTER)


def retry_after(
    headers: Mapping[str, str] | None, ceiling: timedelta | None = None
) -> timedelta | None:
    """Parse a `Retry-After` header (seconds or an HTTP date) into a delay, no longer than
    `ceiling` (the step's remaining budget) nor `MAX_RETRY_AFTER`."""
    value = _header(headers, "retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = int(value) if len(value) <= 12 else 10**12  # _capped bounds it
        return _capped(timedelta(seconds=seconds), ceiling)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        # RFC 5322's "-0000" zone parses as naive; HTTP dates are always UTC.
        moment = moment.replace(tzinfo=UTC)
    return _capped(timedelta(seconds=max(0.0, moment.timestamp() - time.time())), ceiling)


def status_error_type(status: int) -> ErrorType:
    if status == 408:
        return ErrorType.HTTP_TIMEOUT_STATUS
    if status == 429:
        return ErrorType.HTTP_RATE_LIMITED
    if status == 503:
        return ErrorType.HTTP_UNAVAILABLE
    if status >= 500:
        return ErrorType.HTTP_SERVER_ERROR
    return ErrorType.HTTP_CLIENT_ERROR


def application_error(
    error_type: ErrorType,
    message: str,
    details: Any = None,
    *,
    next_retry_delay: timedelta | None = None,
) -> ApplicationError:
    """The one constructor: retryability and category follow from the type, and URLs in
    `message` are redacted."""
    return ApplicationError(
        redact_urls(message),
        {} if details is None else details,
        type=str(error_type),
        non_retryable=error_type not in RETRYABLE_TYPES,
        next_retry_delay=next_retry_delay,
        category=(
            ApplicationErrorCategory.BENIGN
            if error_type in BENIGN_TYPES
            else ApplicationErrorCategory.UNSPECIFIED
        ),
    )


def http_status_error(
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    details: dict[str, Any] | None = None,
    retry_ceiling: timedelta | None = None,
) -> ApplicationError:
    """An `ApplicationError` for an HTTP response whose status is an error."""
    return application_error(
        status_error_type(status),
        message,
        {"status": status, **(details or {})},
        next_retry_delay=retry_after(headers, retry_ceiling) if status in (429, 503) else None,
    )


def transport_error(message: str, details: dict[str, Any] | None = None) -> ApplicationError:
    return application_error(ErrorType.TRANSPORT_ERROR, message, details)


def non_retryable(
    error_type: ErrorType, message: str, details: dict[str, Any] | None = None
) -> ApplicationError:
    if error_type in RETRYABLE_TYPES:
        raise ValueError(f"{error_type} is a retryable error type")
    return application_error(error_type, message, details)


def llm_retry_after(
    headers: Mapping[str, str] | None, ceiling: timedelta | None = None
) -> timedelta | None:
    """OpenAI's `retry-after-ms` when present (finer grained), else the standard Retry-After."""
    millis = _header(headers, "retry-after-ms")
    if millis:
        try:
            seconds = min(max(0.0, float(millis)) / 1000, MAX_RETRY_AFTER.total_seconds())
            return _capped(timedelta(seconds=seconds), ceiling)
        except ValueError:  # also NaN, which no comparison admits
            pass
    return retry_after(headers, ceiling)


def llm_status_error(
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    details: dict[str, Any] | None = None,
    retry_ceiling: timedelta | None = None,
) -> ApplicationError:
    """An `ApplicationError` for an LLM API's error status: `LlmProviderError` when a later
    attempt may succeed (408, 429, 5xx, 529), else `LlmRequestRejected`."""
    if is_retryable_status(status):
        return application_error(
            ErrorType.LLM_PROVIDER_ERROR,
            message,
            details,
            next_retry_delay=llm_retry_after(headers, retry_ceiling),
        )
    return non_retryable(ErrorType.LLM_REQUEST_REJECTED, message, details)


def llm_unavailable(message: str, details: dict[str, Any] | None = None) -> ApplicationError:
    """A retryable `LlmProviderError` for an LLM API that could not be reached or answered
    nothing usable."""
    return application_error(ErrorType.LLM_PROVIDER_ERROR, message, details)


def llm_unparseable(message: str, details: dict[str, Any] | None = None) -> ApplicationError:
    """A retryable `LlmUnparseableAnswer`: another sample may answer in the asked format."""
    return application_error(ErrorType.LLM_UNPARSEABLE_ANSWER, message, details)


def run_failed(error_type: ErrorType, message: str, details: Any) -> ApplicationError:
    """A workflow's own failure (`InvalidPipeline`, `PipelineFailed`, `InstructionFailed`),
    with the partial result as its details, so the Web UI and the gateway show it."""
    return non_retryable(error_type, message, details)


def error_type_of(error: BaseException | None) -> str:
    """The `type` a failure is reported under: the `ApplicationError`'s own, else the name of
    the exception class (`TimeoutError`, `CancelledError`…), else `Unknown`."""
    if isinstance(error, ApplicationError):
        return error.type or str(ErrorType.UNKNOWN)
    if error is None:
        return str(ErrorType.UNKNOWN)
    return type(error).__name__
