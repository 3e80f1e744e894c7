"""How a step's call is retried, how its failure is described, and when a run must end, for
every engine.

Pure with respect to I/O; imported by workflow code only (inside
`imports_passed_through`), so it may use Temporal's exception and policy types.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    RetryState,
    TimeoutError,
    TimeoutType,
    is_cancelled_exception,
)

from kernel import errors
from kernel.errors import ErrorType, WorkflowStationError
from kernel.redact import redact_urls

#: Exceptions that no retry of a workflow task can heal: data that cannot be decoded or built
#: (a bad payload, a value nested too deep, a number out of range). Raised in workflow code,
#: they fail the run with their message instead of failing its workflow task for ever.
UNHEALABLE: tuple[type[BaseException], ...] = (ValidationError, RecursionError, OverflowError)

#: Running HTTP and LLM calls heartbeat every 2 s; a worker lost mid-call is noticed after this.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)


@dataclass(frozen=True)
class StepFailure:
    """Why a step failed for good: the error type, its message, HTTP status and attempts."""

    type: str
    message: str
    http_status: int | None = None
    attempts: int = 1


class StepFailed(WorkflowStationError):
    """A step failed for good; its engine records `failure` and decides what the run does.

    URLs in the message are redacted (`kernel.redact`): it goes into the run's status,
    webhook events and the run's own failure.
    """

    def __init__(self, failure: StepFailure) -> None:
        failure = dataclasses.replace(failure, message=redact_urls(failure.message))
        super().__init__(failure.message)
        self.failure = failure

    @classmethod
    def of(cls, error_type: ErrorType, message: str) -> StepFailed:
        """A failure decided in workflow code (bad template, unknown endpoint…)."""
        return cls(StepFailure(type=error_type, message=message))


def retry_ceiling(retry_delay: float) -> float:
    """The longest wait between a step's attempts: 32 times its `retry_delay`."""
    return max(retry_delay * 32, retry_delay)


def retry_interval(retry_delay: float, retried: int) -> float:
    """The wait before a step's next attempt once it has been retried `retried` times, as
    `step_retry_policy` has Temporal wait: from `retry_delay`, doubling, up to the ceiling."""
    return float(min(retry_delay * 2.0**retried, retry_ceiling(retry_delay)))


def step_retry_policy(max_retries: int, retry_delay: float) -> RetryPolicy:
    """Exponential backoff from `retry_delay` seconds; non-retryable types fail at once."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=retry_delay),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=retry_ceiling(retry_delay)),
        maximum_attempts=max_retries + 1,
        non_retryable_error_types=errors.NON_RETRYABLE_TYPES,
    )


def heartbeat_timeout(attempt_timeout: timedelta) -> timedelta | None:
    """A heartbeat timeout only where it is shorter than the attempt's own timeout."""
    return HEARTBEAT_TIMEOUT if attempt_timeout > HEARTBEAT_TIMEOUT else None


def activity_failure(exc: FailureError, max_attempts: int, label: str) -> StepFailure:
    """Describe a failed call for the run's status: type, message, HTTP status, attempts.

    `exc` is the `ActivityError` of a regular activity, or the failure a local activity
    raises directly once its retries are used up.
    """
    cause = exc.cause if isinstance(exc, ActivityError) else exc
    details: dict[str, Any] = {}
    if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict):
        details = cause.details[0]
    attempts = int(details.get("attempt") or 1)
    if isinstance(exc, ActivityError) and exc.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED:
        attempts = max_attempts
    elif not isinstance(exc, ActivityError):
        attempts = max_attempts
    if isinstance(cause, TimeoutError):
        kind = cause.type.name if cause.type else "timeout"
        hint = ""
        if cause.type == TimeoutType.HEARTBEAT:
            # Not the target's slowness: the worker making the call went silent.
            hint = (
                f": the worker making the call stopped reporting for"
                f" {HEARTBEAT_TIMEOUT.total_seconds():g}s (it crashed, was killed, or lost"
                " Temporal) and no retry was left; max_retries lets a step ride out worker"
                " restarts"
            )
        return StepFailure(
            type=ErrorType.TIMEOUT,
            message=f"{label}: attempt timed out ({kind}){hint}",
            http_status=details.get("status"),
            attempts=attempts,
        )
    message = cause.message if isinstance(cause, FailureError) else str(cause or exc)
    if not isinstance(exc, ActivityError) and not message.startswith(f"{label}:"):
        # A local activity's failure may carry no label of ours (e.g. a raw Redis error).
        message = f"{label}: {message}"
    return StepFailure(
        type=errors.error_type_of(cause),
        message=message,
        http_status=details.get("status"),
        attempts=attempts,
    )


def step_failed(exc: FailureError, max_attempts: int, label: str) -> BaseException:
    """What a step raises for a failed call: `CancelledError` when the call was cancelled
    (a sibling failed, or the run was cancelled), else `StepFailed`."""
    if is_cancelled_exception(exc):
        return asyncio.CancelledError()
    return StepFailed(activity_failure(exc, max_attempts, label))


def run_deadline(run_timeout: float | None, started: datetime) -> asyncio.Task[None] | None:
    """A timer that fires when `run_timeout` seconds have passed since `started` (the first
    run of a chain that continues as new); None for no deadline. Call it once per run.

    Runs recorded before deadlines existed scheduled no timer; `patched` keeps their replay
    identical.
    """
    if run_timeout is None or not workflow.patched("run-deadline"):
        return None
    remaining = max(run_timeout - (workflow.now() - started).total_seconds(), 0.001)
    return asyncio.create_task(workflow.sleep(timedelta(seconds=remaining), summary="run deadline"))
