"""The gateway's metrics (Prometheus text at `GET /metrics`) and its tracing and logging.

Each app has a registry of its own (tests build many apps in one process). What it counts:

    workflow_station_gateway_requests_total{method, route, status}
    workflow_station_gateway_request_duration_seconds{method, route}   (histogram)
    workflow_station_gateway_runs_started_total{workflow_type}
    process_*                                                           (the process's own)
    temporal_*           the gateway's Temporal client (the SDK's own: requests, latency)

The SDK serves its metrics on an HTTP listener of its own (`PrometheusConfig`), or hands them
over in a buffer: the gateway process takes the buffer (`SdkMetrics`), so its one `/metrics`
route shows both, named as on the worker's endpoint.

`route` is the route's template (`/runs/{workflow_id}`), never the path a client sent, so
ids do not become label values; a request no route matches counts as `unmatched`.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
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
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import (
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowHandle,
)
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_HISTOGRAM,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

from kernel.metrics import DURATION_BUCKETS
from kernel.telemetry import GATEWAY_SERVICE, configure_logging, setup_tracing
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


#: Updates the SDK may buffer between two drains; past it, it drops updates (and says so).
SDK_BUFFER_SIZE = 100_000
#: How often the buffer is drained, scraped or not.
SDK_DRAIN_SECONDS = 1.0

_Labels = frozenset[tuple[str, str]]


@dataclass
class _Histogram:
    buckets: list[int]
    count: int = 0
    sum: float = 0.0


@dataclass
class _Family:
    kind: int
    description: str
    values: dict[_Labels, float] = field(default_factory=dict)
    histograms: dict[_Labels, _Histogram] = field(default_factory=dict)


class SdkMetrics(Collector):
    """The Temporal client's own metrics, folded from the SDK's `MetricBuffer` into Prometheus
    samples: counters summed (as `<name>_total`), gauges set, histograms bucketed like the
    engine's durations (seconds)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.buffer = MetricBuffer(SDK_BUFFER_SIZE, MetricBufferDurationFormat.SECONDS)
        #: The runtime the gateway's Temporal client is to use, so its metrics land here.
        self.runtime = Runtime(telemetry=TelemetryConfig(metrics=self.buffer))
        self._families: dict[str, _Family] = {}
        registry.register(self)

    def drain(self) -> None:
        for update in self.buffer.retrieve_updates():
            metric = update.metric
            family = self._families.get(metric.name)
            if family is None:
                family = _Family(metric.kind, metric.description or metric.name)
                self._families[metric.name] = family
            labels = _labels(update.attributes)
            if metric.kind == BUFFERED_METRIC_KIND_COUNTER:
                family.values[labels] = family.values.get(labels, 0.0) + update.value
            elif metric.kind == BUFFERED_METRIC_KIND_HISTOGRAM:
                histogram = family.histograms.get(labels)
                if histogram is None:
                    histogram = _Histogram([0] * len(DURATION_BUCKETS))
                    family.histograms[labels] = histogram
                index = bisect.bisect_left(DURATION_BUCKETS, update.value)
                for bucket in range(index, len(DURATION_BUCKETS)):
                    histogram.buckets[bucket] += 1
                histogram.count += 1
                histogram.sum += update.value
            else:
                family.values[labels] = float(update.value)

    def collect(self) -> Iterable[Metric]:
        self.drain()
        for name, family in sorted(self._families.items()):
            if family.kind == BUFFERED_METRIC_KIND_HISTOGRAM:
                yield _histogram(name, family)
                continue
            kind = "counter" if family.kind == BUFFERED_METRIC_KIND_COUNTER else "gauge"
            metric = Metric(name, family.description, kind)
            suffix = "_total" if kind == "counter" else ""
            for labels, value in family.values.items():
                metric.add_sample(name + suffix, dict(labels), value)
            yield metric

    @asynccontextmanager
    async def draining(self) -> AsyncIterator[None]:
        """Drain the buffer every `SDK_DRAIN_SECONDS` while the app runs, so an unscraped
        gateway never fills it."""

        async def drain_forever() -> None:
            while True:
                await asyncio.sleep(SDK_DRAIN_SECONDS)
                self.drain()

        task = asyncio.create_task(drain_forever())
        try:
            yield
        finally:
            task.cancel()


def _labels(attributes: Mapping[str, str | int | float | bool]) -> _Labels:
    return frozenset((key, str(value)) for key, value in attributes.items())


def _histogram(name: str, family: _Family) -> Metric:
    metric = Metric(name, family.description, "histogram")
    for labels, histogram in family.histograms.items():
        base = dict(labels)
        for bound, count in zip(DURATION_BUCKETS, histogram.buckets, strict=True):
            metric.add_sample(f"{name}_bucket", {**base, "le": str(float(bound))}, count)
        metric.add_sample(f"{name}_bucket", {**base, "le": "+Inf"}, histogram.count)
        metric.add_sample(f"{name}_count", base, histogram.count)
        metric.add_sample(f"{name}_sum", base, histogram.sum)
    return metric


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text: the gateway's metrics and its Temporal client's (the worker serves
    its own)."""
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
