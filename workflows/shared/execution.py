"""Execution modes: whether a step's HTTP call runs as a regular or a local activity.

    durable  every call a regular activity: scheduled and retried by the server, visible in
             the Web UI's pending activities (attempt, last failure), rides out long outages
             of the target; two server round trips more per call.
    fast     every call that fits a local activity runs as one, in the worker that runs the
             workflow: recorded as a marker, retried by the worker, its liveness carried by
             the workflow task; a crashed worker re-runs the whole call.
    auto     fast for short calls (the whole worst case fits the bound), durable otherwise.

A call fits a local activity (`runs_local`) when it stays on the workflow's own worker (an
endpoint worker's task queue is out of a local activity's reach), one attempt is bounded by
`local_max_seconds` and so are the waits between its retries; for `auto`, every attempt
timing out plus those waits must fit it. Past the bound a worker crash would cost too much
repeated work, and a call being retried for minutes belongs where the Web UI shows it.

The mode is decided at submission (the gateway stamps it, and the bound, on the run's
engine options) and carried in the input; inputs from before modes read as durable.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

from activities.http.models import CALL_HTTP, HttpCall, HttpResult
from workflows.shared.failures import heartbeat_timeout, retry_interval, step_failed

ExecutionMode = Literal["durable", "fast", "auto"]
#: Resolved per call: a regular activity, or a local one.
Placement = Literal["activity", "local"]

#: The bound on one attempt and on the waits between retries of a local activity (seconds).
LOCAL_MAX_SECONDS = 60.0


def retry_waits(max_retries: int, retry_delay: float) -> float:
    """The seconds a call waits between its attempts at most, by `step_retry_policy`'s backoff
    (`retry_interval`)."""
    return sum(retry_interval(retry_delay, retried) for retried in range(max_retries))


def worst_case_seconds(timeout_seconds: float, max_retries: int, retry_delay: float) -> float:
    """The longest a call can take: every attempt timing out, and the waits between them."""
    return (max_retries + 1) * timeout_seconds + retry_waits(max_retries, retry_delay)


def runs_local(
    mode: ExecutionMode,
    *,
    timeout_seconds: float,
    max_retries: int,
    retry_delay: float,
    routed: bool,
    local_max_seconds: float = LOCAL_MAX_SECONDS,
) -> bool:
    """Whether a call runs as a local activity in `mode` (see the module docstring).

    Args:
        timeout_seconds: One attempt's timeout.
        max_retries: Retries after the first attempt.
        retry_delay: The first wait between attempts; later ones double.
        routed: The call goes to an endpoint worker's task queue.
        local_max_seconds: The bound, as stamped on the run.
    """
    if mode == "durable" or routed:
        return False
    if mode == "fast":
        waits = retry_waits(max_retries, retry_delay)
        return timeout_seconds <= local_max_seconds and waits <= local_max_seconds
    return worst_case_seconds(timeout_seconds, max_retries, retry_delay) <= local_max_seconds


async def execute_call(
    call: HttpCall,
    *,
    placement: Placement,
    max_attempts: int,
    retry_policy: RetryPolicy,
    summary: str,
    task_queue: str | None = None,
    activity_id: str | None = None,
) -> HttpResult:
    """Run `CALL_HTTP` as placed, with the call's own timeout and retry policy.

    A local activity has no heartbeat timeout: the worker running it is the one running the
    workflow, and the workflow task's own timeout notices its loss.

    Raises:
        StepFailed: the call failed for good.
        asyncio.CancelledError: the call was cancelled.
    """
    timeout = timedelta(seconds=call.timeout_seconds)
    result: HttpResult
    try:
        if placement == "local":
            result = await workflow.execute_local_activity(
                CALL_HTTP,
                call,
                result_type=HttpResult,
                activity_id=activity_id,
                start_to_close_timeout=timeout,
                retry_policy=retry_policy,
                summary=summary,
            )
        else:
            result = await workflow.execute_activity(
                CALL_HTTP,
                call,
                result_type=HttpResult,
                activity_id=activity_id,
                task_queue=task_queue,
                start_to_close_timeout=timeout,
                heartbeat_timeout=heartbeat_timeout(timeout),
                retry_policy=retry_policy,
                summary=summary,
            )
    except FailureError as exc:
        raise step_failed(exc, max_attempts, call.label) from exc
    return result
