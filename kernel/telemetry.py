"""Telemetry set up once per process: traces (OpenTelemetry over OTLP), the SDK runtime
that serves the worker's Prometheus endpoint, and JSON log lines.

The composition roots (`worker.py`, the gateway's app factory) call these with their
settings; workflow and activity code only records, through `workflow.logger`,
`activity.logger` and `kernel.metrics`.

Traces are off unless an OTLP endpoint is configured: no tracer provider is installed, so
every span the interceptors and instrumentations start is a no-op and nothing is exported
or propagated.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor, RequestInfo
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio import activity, client, workflow
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from kernel.metrics import ACTIVITY_DURATION, DURATION_BUCKETS, EngineTelemetry
from kernel.redact import redact_url

GATEWAY_SERVICE = "workflow-station-gateway"
WORKER_SERVICE = "workflow-station-worker"

LogFormat = Literal["json", "text"]

#: The name of the handler `configure_logging` installs on the root logger.
_HANDLER_NAME = "workflow-station"

#: The one text format, for `LOG_FORMAT=text` (and a terminal).
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


# -- traces ---------------------------------------------------------------------------------


def setup_tracing(service_name: str, otlp_endpoint: str | None) -> TracerProvider | None:
    """Install a tracer provider exporting over OTLP/HTTP to `otlp_endpoint` (its
    `/v1/traces`), batched off the request path; None, and tracing stays off, without one.

    The exporter reads its other options (`OTEL_EXPORTER_OTLP_HEADERS`, timeouts) from the
    environment, as OpenTelemetry documents them. A process installs one provider: a second
    call returns the first.
    """
    if otlp_endpoint is None:
        return None
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    exporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def tracing_on() -> bool:
    """Whether `setup_tracing` installed a tracer provider (an OTLP endpoint is configured)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def temporal_interceptors(*, worker: bool) -> list[client.Interceptor]:
    """The interceptors of a process's Temporal client: spans for client calls, workflows
    and activities (context carried in Temporal headers), and for the worker the engine's
    run and activity metrics and log lines.

    No tracing interceptor while the process has no tracer provider (`setup_tracing` without
    an endpoint; call it first): it would still build and carry a context for every workflow
    task and activity, for spans nobody records.
    """
    interceptors: list[client.Interceptor] = [TracingInterceptor()] if tracing_on() else []
    if worker:
        interceptors.append(EngineTelemetry())
    return interceptors


def instrument_outbound_client(client: httpx.AsyncClient) -> None:
    """A span per request (every redirect hop too) of the outbound client, and `traceparent`
    sent with it, so a step's target joins the run's trace.

    The span shows the URL's origin only (as webhook URLs are everywhere): a path or query
    can hold a `{{secrets.NAME}}` or a token, and spans leave the worker.

    Nothing while the process has no tracer provider (`setup_tracing` without an endpoint;
    call it first): the instrumentation would still copy every request's and response's
    headers for spans nobody records (seen in the worker's profile, bench/profile.md).
    """
    if not tracing_on():
        return
    HTTPXClientInstrumentor.instrument_client(client, request_hook=_redact_span_url)


async def _redact_span_url(span: trace.Span, request: RequestInfo) -> None:
    attributes = getattr(span, "attributes", None) or {}
    shown = redact_url(str(request.url), keep_path=False)
    for key in ("http.url", "url.full"):
        if key in attributes:
            span.set_attribute(key, shown)


# -- metrics --------------------------------------------------------------------------------


def worker_runtime(metrics_address: str | None, service_name: str) -> Runtime:
    """The worker's Temporal runtime, serving Prometheus text at
    `http://<metrics_address>/metrics`: the SDK's own metrics (`temporal_*`) and the engine's
    (`workflow_station_*`, recorded through Temporal's meters). Without an address the
    default runtime (no metrics endpoint)."""
    if metrics_address is None:
        return Runtime.default()
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=metrics_address,
                counters_total_suffix=True,
                durations_as_seconds=True,
                histogram_bucket_overrides={ACTIVITY_DURATION: DURATION_BUCKETS},
            ),
            global_tags={"service_name": service_name},
            attach_service_name=False,
        )
    )


# -- logs -----------------------------------------------------------------------------------

#: The keys Temporal's loggers put in `extra` (`temporal_workflow`, `temporal_activity`) that
#: a log line shows, under the names it shows them by.
_WORKFLOW_FIELDS = {"workflow_id": "workflow_id", "run_id": "run_id", "workflow_type": "workflow"}
_ACTIVITY_FIELDS = {
    "workflow_id": "workflow_id",
    "workflow_run_id": "run_id",
    "activity_type": "activity",
    "activity_id": "activity_id",
    "attempt": "attempt",
}
#: DAG steps run as activities with this id prefix (`workflows.dag.workflow.step_activity_id`).
_STEP_ACTIVITY_PREFIX = "step:"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `time`, `level`, `logger`, `message`, and, when known,
    `workflow_id`, `run_id`, `workflow`, `activity`, `activity_id`, `step`, `attempt`,
    `trace_id`, `span_id`, `exception`.

    Only these fields are written, never the record's other attributes: a message is
    written as the code that logged it made it (redacted where it quotes a URL or a
    secret), and nothing else a library attaches to a record can carry a secret along.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        workflow_info = getattr(record, "temporal_workflow", None)
        if isinstance(workflow_info, dict):
            line.update({name: workflow_info.get(key) for key, name in _WORKFLOW_FIELDS.items()})
        activity_info = getattr(record, "temporal_activity", None)
        if isinstance(activity_info, dict):
            line.update({name: activity_info.get(key) for key, name in _ACTIVITY_FIELDS.items()})
            activity_id = str(activity_info.get("activity_id") or "")
            if activity_id.startswith(_STEP_ACTIVITY_PREFIX):
                line["step"] = activity_id.removeprefix(_STEP_ACTIVITY_PREFIX)
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"] = format(span.trace_id, "032x")
            line["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps({k: v for k, v in line.items() if v is not None}, default=str)


def resolve_log_format(configured: LogFormat | None) -> LogFormat:
    """`LOG_FORMAT`, or when unset JSON unless stderr is a terminal (a person reading)."""
    if configured is not None:
        return configured
    return "text" if sys.stderr.isatty() else "json"


def configure_logging(
    log_format: LogFormat | None, *, level: int = logging.INFO, loggers: Sequence[str] = ()
) -> None:
    """Log to stderr in `log_format`, through the root logger and the `loggers` that keep
    handlers of their own (uvicorn's). Calling it again replaces the handler it installed,
    and only that one.

    In JSON, Temporal's loggers stop appending the workflow or activity details to the
    message: the line carries them as fields.
    """
    formatter: logging.Formatter
    if resolve_log_format(log_format) == "json":
        formatter = JsonFormatter()
        workflow.logger.workflow_info_on_message = False
        activity.logger.activity_info_on_message = False
    else:
        formatter = logging.Formatter(TEXT_FORMAT)
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for installed in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(installed)
    root.addHandler(handler)
    root.setLevel(level)
    for name in loggers:
        for own in logging.getLogger(name).handlers:
            own.setFormatter(formatter)
