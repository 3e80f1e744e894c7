"""The gateway's metrics (Prometheus text at `GET /metrics`) and its tracing and logging.

Each app has a registry of its own (tests build many apps in one process). What it counts:

    workflow_station_gateway_requests_total{method, route, status}
    workflow_station_gateway_request_duration_seconds{method, route}   (histogram)
    workflow_station_gateway_runs_started_total{workflow_type}
    process_*                                                           (the process's own)

`route` is the route's template (`/runs/{workflow_id}`), never the path a client sent, so
ids do not become label values; a request no route matches counts as `unmatched`.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import (
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowHandle,
)

from activities.metrics import DURATION_BUCKETS
from activities.telemetry import GATEWAY_SERVICE, configure_logging, setup_tracing
from settings import Settings

router = APIRouter(tags=["metrics"])

#: uvicorn's loggers keep handlers of their own; their lines are formatted like the rest.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class GatewayMetrics:
    """The gateway's instruments, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "workflow_station_gateway_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "workflow_station_gateway_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.runs_started = Counter(
            "workflow_station_gateway_runs_started",
            "Workflows the gateway started (or attached to), by workflow type.",
            ["workflow_type"],
            registry=self.registry,
        )

    def interceptor(self) -> Interceptor:
        """A Temporal client interceptor that counts the workflows started through it."""
        return _CountStarts(self.runs_started)


class RequestMetrics:
    """Counts and times every HTTP request, by its route's template."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.request_duration.labels(method, route).observe(
                time.perf_counter() - started
            )


class _CountStarts(Interceptor):
    def __init__(self, counter: Counter) -> None:
        self.counter = counter

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _CountingOutbound(next, self.counter)


class _CountingOutbound(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, counter: Counter) -> None:
        super().__init__(next)
        self.counter = counter

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        handle = await super().start_workflow(input)
        self.counter.labels(input.workflow).inc()
        return handle


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text: the gateway's own metrics (the worker's are on the worker)."""
    registry: CollectorRegistry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def set_up_process(app: FastAPI, settings: Settings) -> None:
    """What the gateway process (not each app a test builds) sets up once: its log format
    and, with an OTLP endpoint configured, tracing of every request."""
    configure_logging(settings.log_format, loggers=UVICORN_LOGGERS)
    service = settings.otel_service_name or GATEWAY_SERVICE
    if setup_tracing(service, settings.otel_exporter_otlp_endpoint) is not None:
        # /metrics and /health are scraped and probed all day: no trace for each.
        FastAPIInstrumentor.instrument_app(app, excluded_urls="/metrics,/health")
