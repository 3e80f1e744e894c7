"""Segments: in `fast` mode, a connected part of a DAG run inside one local activity.

A local activity per step still costs the worker an activation, a marker and a payload
round trip through the SDK per step (about 5 ms here): a chain of 200 echo steps took 1.0 s
as 200 local activities against 0.2 s of plain asyncio. A segment hands the worker the ready
steps and every step below them that can run without the workflow (`Scheduler.claim`); the
worker runs them as plain asyncio, each step as soon as its upstream steps are done, with the
same templating, retries, timeouts and output writes as the step's own activity would have,
and reports every step's outcome in one marker.

The trade-offs, beyond a local activity's own (a crashed worker re-runs the segment's calls):
- a step below the segment's first steps is seen (status, events, webhooks) when the segment
  reports, at most `CHECKPOINT_SECONDS` after the segment started plus the longest step in
  flight then: the segment starts no step past its checkpoint (or once its results fill
  `REPORT_MAX_BYTES`) and reports;
- the steps of one segment report together, so a step that fails cancels only what is still
  running in its own segment; siblings that finished before it stay completed.

Pure apart from asyncio: `run_segment` takes the HTTP attempt as a function, so the workflow
(which imports the models and `build_call`) sees no I/O, and the activity
(`workflows.dag.segment_activity`) is handed the client's attempt by the worker.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from pydantic import BaseModel, Field
from temporalio.exceptions import ApplicationError

from activities.http.models import HttpCall, HttpResult, with_idempotency_key
from activities.store.models import OutputTarget, ResultCaching, output_json
from kernel import errors
from kernel.errors import ErrorType
from kernel.responses import main_value
from workflows.dag.graph import step_secrets, step_templates
from workflows.dag.models import DEFAULT_BODY_METHODS, StepConfig, StepError
from workflows.dag.references import result_variable
from workflows.shared.failures import StepFailed, StepFailure, retry_ceiling, retry_interval
from workflows.shared.templating import Renderer, TemplateError, references

RUN_SEGMENT: Final = "run_dag_segment"

#: A segment starts no step after this many seconds and reports: how far behind a run's
#: status and events may be on the steps below the segment's first ones.
CHECKPOINT_SECONDS = 1.0
#: The most steps one segment takes, so its input and report stay a bounded size.
MAX_SEGMENT_STEPS = 1000
#: A segment whose results add up to this many bytes (as JSON) starts no more steps and
#: reports: one report holds every result, and the run keeps it all in memory at once.
REPORT_MAX_BYTES = 8 * 1024 * 1024


class SegmentStep(BaseModel):
    """One step of a segment, with what the workflow decided about it."""

    config: StepConfig
    #: Its upstream steps, inside the segment or completed before it.
    upstream: list[str] = Field(default_factory=list)
    timeout_seconds: float
    max_retries: int = 0
    retry_delay: float = 1.0
    outputs: OutputTarget | None = None
    idempotency_key: str | None = None
    cache: ResultCaching | None = None


class Segment(BaseModel):
    """What `RUN_SEGMENT` runs: `roots` first (the workflow has started them), then every
    other step once its upstream steps inside the segment have completed."""

    steps: list[SegmentStep]
    roots: list[str]
    #: The variables the steps' templates and default bodies read, as the run holds them.
    variables: dict[str, Any] = Field(default_factory=dict)
    original_input: Any = None
    input_data: dict[str, Any] = Field(default_factory=dict)
    max_request_chars: int | None = None
    #: Whose run it is: its calls fill in that tenant's secrets (`HttpCall.tenant`).
    tenant: str | None = None
    #: Steps of the segment running at once.
    max_parallel: int = 100
    checkpoint_seconds: float = CHECKPOINT_SECONDS
    report_max_bytes: int = REPORT_MAX_BYTES


class StepReport(BaseModel):
    """How one step of a segment ended: a result, an error, or cancelled."""

    name: str
    result: HttpResult | None = None
    error: StepError | None = None
    cancelled: bool = False
    duration_ms: int = 0


class SegmentReport(BaseModel):
    """Every step the segment ran, in the order they ended; the rest did not start."""

    steps: list[StepReport] = Field(default_factory=list)


def build_call(
    step: StepConfig,
    variables: Mapping[str, Any],
    *,
    upstream: list[str],
    original_input: Any,
    input_data: dict[str, Any],
    max_request_chars: int | None,
    timeout_seconds: float,
    idempotency_key: str | None,
    tenant: str | None = None,
    cache: ResultCaching | None = None,
) -> HttpCall:
    """A step's request, its templates rendered against `variables`.

    Raises:
        StepFailed: a template cannot be rendered, or the URL renders to a non-string.
    """
    label = f"step {step.step_name!r}"
    prep = step.input_prep_config
    # Bounded, so a large value referenced many times cannot build a request that would
    # wedge the run (Temporal refuses oversized payloads on every retry).
    secrets = step_secrets(step)
    renderer = Renderer(variables, max_chars=max_request_chars, secret_names=secrets)
    try:
        url = renderer.render(step.service_url or "")
        headers = {**renderer.render(step.headers)}
        query: dict[str, Any] = {}
        if prep is not None:
            headers.update(renderer.render(prep.headers))
            query = renderer.render(prep.query)
        body: Any = None
        if prep is not None and prep.has_body:
            body = renderer.render(prep.body)
            send_body = step.method != "GET"
        else:
            send_body = step.method in DEFAULT_BODY_METHODS
            if send_body:
                body = {
                    "original_input": original_input,
                    "input_data": input_data,
                    "dependencies": {dep: variables.get(result_variable(dep)) for dep in upstream},
                }
                renderer.charge(body)
    except TemplateError as exc:
        raise StepFailed.of(exc.error_type, f"{label}: {exc}") from exc
    if not isinstance(url, str):
        raise StepFailed.of(
            ErrorType.TEMPLATE_ERROR, f"{label}: service_url rendered to a non-string"
        )
    if idempotency_key is not None:
        headers = with_idempotency_key(headers, idempotency_key)
    return HttpCall(
        method=step.method,
        url=url,
        headers=headers,
        query=query,
        body=body,
        send_body=send_body,
        timeout_seconds=timeout_seconds,
        label=label,
        secret_names=secrets,
        tenant=tenant,
        cache=cache,
    )


def variables_read(step: StepConfig, upstream: list[str]) -> set[str]:
    """The variables a step's request may read: its templates' roots and, for its default
    body, its upstream steps' results."""
    names = {
        reference.root
        for _, template in step_templates(step)
        for _, reference in _references(template)
    }
    names.update(result_variable(dep) for dep in upstream)
    return names


def _references(template: Any) -> list[tuple[str, Any]]:
    try:
        return list(references(template))
    except TemplateError:
        return []  # rendering reports it, with the step's name


#: One attempt of a call: `HttpActivities.attempt` in the worker.
Attempt = Callable[[HttpCall, int], Awaitable[HttpResult]]


def _error(failure: StepFailure) -> StepError:
    # Through `StepFailed`, which redacts the URLs in the message.
    return StepError(**vars(StepFailed(failure).failure))


def _backoff(step: SegmentStep, attempt: int, asked: float | None) -> float:
    """The wait after failed `attempt`, as `step_retry_policy` would have Temporal wait
    (`retry_interval`); a server's `Retry-After` within the same ceiling."""
    if asked is not None:
        return min(asked, retry_ceiling(step.retry_delay))
    return retry_interval(step.retry_delay, attempt - 1)


async def _attempts(step: SegmentStep, call: HttpCall, attempt_call: Attempt) -> StepReport:
    """Make the call, retried as the step's retry settings say."""
    name = step.config.step_name
    for attempt in range(1, step.max_retries + 2):
        asked: float | None = None
        try:
            async with asyncio.timeout(step.timeout_seconds):
                return StepReport(name=name, result=await attempt_call(call, attempt))
        except ApplicationError as exc:
            details = exc.details[0] if exc.details and isinstance(exc.details[0], dict) else {}
            failure = StepFailure(
                type=exc.type or str(ErrorType.UNKNOWN),
                message=exc.message,
                http_status=details.get("status"),
                attempts=attempt,
            )
            retryable = not exc.non_retryable and failure.type not in errors.NON_RETRYABLE_TYPES
            if exc.next_retry_delay is not None:
                asked = exc.next_retry_delay.total_seconds()
        except TimeoutError:
            failure = StepFailure(
                type=ErrorType.TIMEOUT,
                message=f"{call.label}: attempt timed out (START_TO_CLOSE)",
                attempts=attempt,
            )
            retryable = True
        except Exception as exc:  # what a local activity would retry: a bug, a lost socket
            failure = StepFailure(
                type=errors.error_type_of(exc),
                message=f"{call.label}: {type(exc).__name__}: {exc}",
                attempts=attempt,
            )
            retryable = True
        if not retryable or attempt > step.max_retries:
            return StepReport(name=name, error=_error(failure))
        await asyncio.sleep(_backoff(step, attempt, asked))
    raise AssertionError("unreachable: the last attempt returns")


async def _run_step(
    step: SegmentStep, segment: Segment, variables: Mapping[str, Any], attempt_call: Attempt
) -> StepReport:
    started = time.monotonic()
    name = step.config.step_name
    try:
        try:
            call = build_call(
                step.config,
                variables,
                upstream=step.upstream,
                original_input=segment.original_input,
                input_data=segment.input_data,
                max_request_chars=segment.max_request_chars,
                timeout_seconds=step.timeout_seconds,
                idempotency_key=step.idempotency_key,
                tenant=segment.tenant,
                cache=step.cache,
            )
        except StepFailed as exc:
            report = StepReport(name=name, error=_error(exc.failure))
        else:
            call.outputs = step.outputs
            report = await _attempts(step, call, attempt_call)
    except asyncio.CancelledError:
        report = StepReport(name=name, cancelled=True)
    report.duration_ms = int((time.monotonic() - started) * 1000)
    return report


async def run_segment(segment: Segment, attempt_call: Attempt) -> SegmentReport:
    """Run a segment's steps as their dependencies allow, up to `max_parallel` at once.

    Steps other than the roots start only before the checkpoint, while the results so far
    stay under `report_max_bytes`, and while no step has failed; a failed step cancels the
    steps still running (fail fast, as the run does).
    """
    steps = {step.config.step_name: step for step in segment.steps}
    variables = dict(segment.variables)
    roots = set(segment.roots)
    waiting = {name: sum(up in steps for up in step.upstream) for name, step in steps.items()}
    below: dict[str, list[str]] = {name: [] for name in steps}
    for name, step in steps.items():
        for up in step.upstream:
            if up in steps:
                below[up].append(name)
    ready = deque(name for name in steps if not waiting[name] and name not in roots)
    checkpoint = time.monotonic() + segment.checkpoint_seconds
    reported_bytes = 0
    report = SegmentReport()
    running: set[asyncio.Task[StepReport]] = set()

    def start(name: str) -> None:
        running.add(asyncio.create_task(_run_step(steps[name], segment, variables, attempt_call)))

    failed = False
    try:
        for name in segment.roots:
            start(name)
        while True:
            while (
                ready
                and not failed
                and len(running) < segment.max_parallel
                and reported_bytes < segment.report_max_bytes
                and time.monotonic() < checkpoint
            ):
                start(ready.popleft())
            if not running:
                break
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                running.discard(task)
                step_report = task.result()
                report.steps.append(step_report)
                name = step_report.name
                if step_report.result is not None:
                    body = step_report.result.body
                    reported_bytes += len(output_json(body))
                    variables[result_variable(name)] = body
                    value = main_value(body)
                    variables.update((output, value) for output in steps[name].config.outputs)
                    for child in below[name]:
                        waiting[child] -= 1
                        if not waiting[child]:
                            ready.append(child)
                elif step_report.error is not None and not failed:
                    failed = True
                    for other in running:
                        other.cancel()
    finally:
        for task in running:
            task.cancel()
    return report
