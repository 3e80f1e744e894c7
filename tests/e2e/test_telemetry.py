"""Observability of the real processes: a gateway and a worker process, traces sent to a
local OTLP collector stand-in, both `/metrics` endpoints scraped, the worker's JSON logs.

One DAG run goes through the gateway: its trace holds the gateway's request, the workflow,
each activity and each outbound call, and the step target sees the trace in `traceparent`.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from tests.conftest import Targets, make_settings, unique, wait_until
from tests.e2e.processes import gateway_process, listening, stop, worker_process
from tests.fakes.targets import free_port, serve

#: A token in a step's query string: spans leave the worker, this must not.
SECRET = "s3cret-in-the-query"
#: Service names a span's resource carries.
GATEWAY, WORKER = "workflow-station-gateway", "workflow-station-worker"


@dataclass(frozen=True)
class Span:
    service: str
    scope: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, str]


@dataclass
class Collector:
    """What an OTLP/HTTP collector received: every span of every export."""

    spans: list[Span] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/traces")
        async def export(request: Request) -> Response:
            body = await request.body()
            if request.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            exported = ExportTraceServiceRequest.FromString(body)
            for resource_spans in exported.resource_spans:
                attributes = {
                    a.key: a.value.string_value for a in resource_spans.resource.attributes
                }
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            Span(
                                service=attributes.get("service.name", ""),
                                scope=scope_spans.scope.name,
                                name=span.name,
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_id=span.parent_span_id.hex(),
                                attributes={a.key: _value(a.value) for a in span.attributes},
                            )
                        )
            return Response(
                ExportTraceServiceResponse().SerializeToString(),
                media_type="application/x-protobuf",
            )

        return app


def _value(value: AnyValue) -> str:
    kind = value.WhichOneof("value")
    return str(getattr(value, kind)) if kind else ""


@dataclass
class Stack:
    gateway: str
    worker_metrics: str
    worker_log: Path
    collector: Collector


@pytest.fixture(scope="module")
async def stack(
    dev_env: WorkflowEnvironment, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    logs = tmp_path_factory.mktemp("telemetry")
    settings = make_settings(dev_env.client, redis_url)
    collector = Collector()
    async with serve(collector.app()) as collector_url:
        telemetry_env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector_url,
            # Export each batch within 0.1 s instead of 5 s, so the test waits less.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "LOG_FORMAT": "json",
        }
        gateway_port, metrics_port = free_port(), free_port()
        worker = worker_process(
            settings,
            logs / "worker.log",
            extra_env={**telemetry_env, "WORKER_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}"},
        )
        gateway = gateway_process(settings, gateway_port, logs / "gateway.log", telemetry_env)
        try:
            await listening(gateway_port)
            await listening(metrics_port)
            yield Stack(
                gateway=f"http://127.0.0.1:{gateway_port}",
                worker_metrics=f"http://127.0.0.1:{metrics_port}/metrics",
                worker_log=logs / "worker.log",
                collector=collector,
            )
        finally:
            stop(gateway)
            stop(worker)


def pipeline(targets: Targets, *, webhook: str | None = None) -> dict[str, Any]:
    """Two steps, the second failing once with a 503 (so it retries), the second after the
    first."""
    first, second = unique("traced"), unique("flaky")
    settings: dict[str, Any] = {"error_handling": {"max_retries": 2, "retry_delay": 0.1}}
    if webhook:
        settings["notifications"] = {"webhook_url": webhook}
    return {
        "workflow_id": unique("telemetry"),
        "STEPS_CONFIG": [
            {
                "step_name": "fetch",
                "usid": "u1",
                "service_url": f"{targets.url}/echo/{first}?token={SECRET}",
                "method": "GET",
            },
            {
                "step_name": "retry",
                "usid": "u2",
                "service_url": f"{targets.url}/flaky/{second}",
                "method": "POST",
                "dependencies": ["fetch"],
            },
        ],
        "PIPELINE_SETTINGS": settings,
    }


async def run(stack: Stack, payload: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.post(f"{stack.gateway}/execute", json=payload)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_one_dag_run_is_one_trace_from_the_gateway_to_each_outbound_call(
    stack: Stack, targets: Targets
) -> None:
    payload = pipeline(targets)
    result = await run(stack, payload)
    assert result["status"] == "completed"
    fetch_key = payload["STEPS_CONFIG"][0]["service_url"].rsplit("/", 1)[1].split("?")[0]
    traceparent = targets.state.requests[fetch_key][0]["headers"]["traceparent"]
    _, trace_id, parent_id, _ = traceparent.split("-")

    def trace() -> list[Span]:
        return [s for s in stack.collector.spans if s.trace_id == trace_id]

    def names() -> list[str]:
        return [s.name for s in trace()]

    # The worker exports the last spans (the run's) a moment after the answer.
    async def complete() -> bool:
        seen = names()
        return (
            "POST /execute" in seen
            and "RunWorkflow:DagWorkflow" in seen
            and seen.count("RunActivity:call_http") == 3
        )

    await wait_until(complete)
    spans = trace()
    [request] = [s for s in spans if s.service == GATEWAY and s.name == "POST /execute"]
    assert request.parent_id == ""  # the trace starts at the gateway
    assert "StartWorkflow:DagWorkflow" in names()
    assert {s.service for s in spans if s.name.startswith("RunActivity:")} == {WORKER}
    # Each attempt of each step: one activity span and, under it, one outbound call span,
    # whose id the target received as the parent in `traceparent`.
    outbound = [s for s in spans if s.scope == "opentelemetry.instrumentation.httpx"]
    activities = {s.span_id for s in spans if s.name == "RunActivity:call_http"}
    assert len(outbound) == 3
    assert {s.parent_id for s in outbound} == activities
    assert parent_id in {s.span_id for s in outbound}
    # An outbound span names the origin it called, not the path or query values (tokens,
    # secrets): `http://127.0.0.1:<port>/***`, with `?token=***` for the first step.
    urls = {s.attributes.get("http.url", s.attributes.get("url.full")) for s in outbound}
    assert urls == {f"{targets.url}/***", f"{targets.url}/***?token=***"}
    assert not [s for s in spans if SECRET in repr(s.attributes)]
    for request_seen in targets.state.requests[
        payload["STEPS_CONFIG"][1]["service_url"].rsplit("/", 1)[1]
    ]:
        assert request_seen["headers"]["traceparent"].split("-")[1] == trace_id


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text page, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(
    page: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (n, have), value in page.items() if n == name and wanted <= have)


async def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(url)
    assert response.status_code == 200
    return samples(response.text)


async def test_both_metrics_endpoints_count_a_dag_run(stack: Stack, targets: Targets) -> None:
    gateway_metrics = f"{stack.gateway}/metrics"
    worker_before, gateway_before = (
        await scrape(stack.worker_metrics),
        await scrape(gateway_metrics),
    )
    hook = unique("metrics-hook")
    result = await run(stack, pipeline(targets, webhook=f"{targets.url}/hooks/{hook}"))
    assert result["status"] == "completed"
    # A step the outbound guard refuses (the cloud metadata address): the run fails at once.
    refused = pipeline(targets)
    refused["STEPS_CONFIG"][0]["service_url"] = "http://169.254.169.254/latest/meta-data/"
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.post(f"{stack.gateway}/execute", json=refused)
    assert response.json()["status"] == "failed", response.text

    def moved(before: Any, after: Any, name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    async def settled() -> Any:
        page = await scrape(stack.worker_metrics)
        done = moved(worker_before, page, "workflow_station_webhook_deliveries_total")
        failed = moved(
            worker_before,
            page,
            "workflow_station_runs_total",
            workflow_type="DagWorkflow",
            outcome="failed",
        )
        return page if done >= 6 and failed >= 1 else None

    worker_after = await wait_until(settled)
    gateway_after = await scrape(gateway_metrics)

    def worker(name: str, **labels: str) -> float:
        return moved(worker_before, worker_after, name, **labels)

    assert (
        worker("workflow_station_runs_total", workflow_type="DagWorkflow", outcome="completed") == 1
    )
    assert worker("workflow_station_runs_total", workflow_type="DagWorkflow", outcome="failed") == 1
    assert worker("workflow_station_steps_total", engine="dag", outcome="completed") == 2
    assert worker("workflow_station_steps_total", engine="dag", outcome="failed") == 1
    assert worker("workflow_station_steps_total", engine="dag", outcome="cancelled") == 0
    calls = {"activity_type": "call_http"}
    assert worker("workflow_station_activity_attempts_total", outcome="completed", **calls) == 2
    assert worker("workflow_station_activity_attempts_total", outcome="failed", **calls) == 2
    assert worker("workflow_station_activity_attempts_total", error_type="HttpUnavailable") == 1
    assert worker("workflow_station_activity_retries_total", **calls) == 1
    assert worker("workflow_station_activity_duration_seconds_count", **calls) == 4
    assert worker("workflow_station_outbound_refusals_total", **calls) == 1
    # Six events (the run's start and end, each step's start and end), each queued once and
    # delivered once.
    assert worker("workflow_station_webhook_events_queued_total") == 6
    assert worker("workflow_station_webhook_deliveries_total", outcome="delivered") == 6
    # The SDK's own metrics share the endpoint.
    assert worker("temporal_workflow_completed_total") >= 1
    sdk_names = sorted({name for name, _ in worker_after if name.startswith("temporal_")})
    assert total(worker_after, "temporal_activity_execution_latency_count") > 0, sdk_names

    def gateway(name: str, **labels: str) -> float:
        return moved(gateway_before, gateway_after, name, **labels)

    execute = {"method": "POST", "route": "/execute"}
    assert gateway("workflow_station_gateway_requests_total", status="200", **execute) == 2
    assert gateway("workflow_station_gateway_request_duration_seconds_count", **execute) == 2
    assert gateway("workflow_station_gateway_runs_started_total", workflow_type="DagWorkflow") == 2
    assert total(gateway_after, "process_cpu_seconds_total") > 0
    # And so do the gateway's Temporal client's (starting runs, waiting for their results).
    sdk_names = sorted({name for name, _ in gateway_after if name.startswith("temporal_")})
    assert gateway("temporal_request_total") >= 2, sdk_names
    assert gateway("temporal_request_latency_count") >= 2, sdk_names


async def test_worker_logs_are_json_lines_naming_the_run_step_and_attempt(
    stack: Stack, targets: Targets
) -> None:
    payload = pipeline(targets)
    result = await run(stack, payload)
    assert result["status"] == "completed"
    workflow_id = payload["workflow_id"]

    def lines() -> list[dict[str, Any]]:
        text = stack.worker_log.read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    async def logged() -> list[dict[str, Any]]:
        return [line for line in lines() if line.get("workflow_id") == workflow_id]

    ours = await wait_until(logged)
    retried = [line for line in ours if line.get("step") == "retry" and line.get("attempt") == 2]
    assert retried, ours
    line = retried[0]
    assert line["run_id"] == result["run_id"]
    assert line["activity"] == "call_http"
    assert {"time", "level", "logger", "message"} <= line.keys()
    # The workflow's own lines (workflow.logger) carry the run too.
    run_lines = [line for line in ours if line.get("workflow") == "DagWorkflow"]
    assert run_lines and all(line["run_id"] == result["run_id"] for line in run_lines)
