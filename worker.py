"""The Temporal worker: composition root for workflows and activities.

    python worker.py                       # orchestration + default HTTP calls + LLM calls
    python worker.py --endpoint endpoint-2 # also serve the endpoint-2 egress queue
    python worker.py --endpoints-only --endpoint endpoint-1 --endpoint endpoint-2

Every activity class receives its clients here; nothing below builds a client per call.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

from redis.asyncio import Redis
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.http.activities import HttpActivities
from activities.http.outbound import build_outbound_client
from activities.http.secrets import Secrets
from activities.http.signing import WebhookSigner
from activities.llm.activities import LlmActivities, build_llm_clients
from activities.llm.billing import Billing
from activities.llm.models import MAX_RATE_LIMIT_WAIT
from activities.llm.ratelimit import RateLimiter
from activities.pricing.table import load_prices
from activities.store.activities import StoreActivities
from activities.store.clients import close_redis
from activities.store.status import PublishingRunner, RedisStatusPublisher, StatusPublisher
from kernel import telemetry
from kernel.codec import EncryptionCodec
from kernel.errors import PayloadUndecodable
from kernel.search import SEARCH_ATTRIBUTES
from kernel.telemetry import (
    WORKER_SERVICE,
    LogFormat,
    setup_tracing,
    temporal_interceptors,
    worker_runtime,
)
from settings import Settings, connect_temporal, get_settings
from workflows.dag.map_batch import MapBatchWorkflow
from workflows.dag.models import MAX_RUN_TIMEOUT_SECONDS
from workflows.dag.segment_activity import SegmentActivities
from workflows.dag.workflow import DagWorkflow
from workflows.endpoint.workflow import EndpointCallWorkflow
from workflows.instructions.workflow import InstructionWorkflow
from workflows.shared.outbox import WebhookOutboxWorkflow

log = logging.getLogger("workflow_station.worker")

#: Production runs workflows outside the SDK's sandbox. The sandbox is a development-time
#: check (it stops `datetime.now()`, `random`, I/O in workflow code), and it costs every
#: activation: it `exec`s code strings to enter the run's module space for the activation and
#: again for each payload's serialization context, ~1 ms of the worker's CPU per DAG step on
#: the 2-core bench machine (`bench/profile.md`), on the critical path of a chain and the
#: bottleneck of a fan-out. The engine's workflow modules keep no state a run changes (every
#: run's state lives on its workflow instance), which is what running unsandboxed requires.
#: What it costs: nothing in production stops a non-deterministic call written in a
#: workflow module. The tests keep that check: their workers use `SANDBOXED_RUNNER`, and
#: tests/workflows/test_replay.py replays every recorded history under the SDK's default,
#: strict sandbox as well as under this runner.
WORKFLOW_RUNNER: WorkflowRunner = UnsandboxedWorkflowRunner()

#: The sandbox the tests run the workflows in. Workflows import only I/O-free modules
#: (activity names and models, the shared `kernel`, pure logic) and pydantic; passing those
#: through spares the sandbox re-importing them for every run. No HTTP, LLM or Redis client
#: library is named: workflow code never imports one (tests/unit/test_layout.py checks it).
#: opentelemetry's context module is loaded lazily by the SDK and the Redis client alike;
#: passed through, it is one module for all. The engine's own `workflows` package is passed
#: through as well, so a test's new run does not rebuild its pydantic models; the strict
#: sandbox of the replay test still imports them afresh. `redis` is passed through for the
#: same reason as opentelemetry: the Redis client loads submodules lazily on first use, and
#: when that first use (by the large-payload converter, or a passed-through activities
#: module) falls while a workflow runs, the sandbox warned for each one.
SANDBOXED_RUNNER: WorkflowRunner = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "pydantic", "kernel", "activities", "opentelemetry", "workflows", "redis"
    )
)

#: A workflow input, update or activity result that cannot be decoded fails its run at once
#: with `PayloadUndecodable`, in every workflow (the outbox declares no failure types of its
#: own): otherwise the workflow task would fail, retried until the run's execution timeout.
#: (A signal that cannot be decoded is dropped by the SDK, logged, and the run goes on.)
UNDECODABLE_FAILS_THE_RUN = [PayloadUndecodable]


@dataclass
class Activities:
    http: HttpActivities
    store: StoreActivities
    llm: LlmActivities
    #: Publishes runs' status to Redis for the gateway (`activities.store.status`); None with
    #: payload encryption on.
    status: StatusPublisher | None = None


def webhook_signer(settings: Settings) -> WebhookSigner:
    """The signer for `WEBHOOK_SIGNING_SECRET` and the tenants' own; a malformed secret stops
    the worker, with a message that names the setting and never repeats the secret."""
    try:
        return WebhookSigner(
            settings.webhook_signing_secrets, settings.webhook_signing_secrets_by_tenant
        )
    except ValueError as exc:
        raise SystemExit(f"WEBHOOK_SIGNING_SECRET: {exc}") from None


def quiet_http_client_logs() -> None:
    """httpx logs every request at INFO with its full URL, and a step's URL can carry tokens
    (a secret filled into its query string, too): its loggers keep warnings only."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


@asynccontextmanager
async def open_activities(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> AsyncIterator[Activities]:
    """Open the clients every activity shares, and close them on the way out.

    Secrets are read here, from ``SECRET_<NAME>`` variables of `environ` (the process's
    environment by default) and from ``SECRETS_FILE``, and handed to the HTTP activities
    only: they never travel in a workflow's input.
    """
    secrets = Secrets.load(os.environ if environ is None else environ, settings.secrets_file)
    keys = settings.encryption_keys
    # Outputs written to Redis are sealed with the payloads' keys (`kernel.codec`).
    codec = EncryptionCodec(keys) if keys else None
    quiet_http_client_logs()
    async with AsyncExitStack() as stack:
        http_client = await stack.enter_async_context(
            build_outbound_client(
                allow=settings.outbound_allow,
                sensitive_headers=settings.outbound_sensitive_headers,
                max_redirects=settings.outbound_max_redirects,
                connect_timeout=settings.outbound_connect_timeout_seconds,
            )
        )
        redis = Redis.from_url(settings.effective_redis_url)
        stack.push_async_callback(close_redis, redis)
        status: StatusPublisher | None = None
        if settings.publishes_status:
            # Its own writer thread: a workflow task never waits for Redis (see the module).
            publisher = RedisStatusPublisher(
                settings.effective_redis_url,
                fresh_for=timedelta(seconds=settings.status_fresh_seconds),
            )
            stack.callback(publisher.close)
            status = publisher
        openai_client, anthropic_client = build_llm_clients(
            openai_api_key=settings.openai_api_key,
            openai_base_url=settings.openai_base_url,
            anthropic_api_key=settings.anthropic_api_key,
            anthropic_base_url=settings.anthropic_base_url,
            request_timeout_seconds=settings.llm_step_timeout_seconds,
        )
        for llm_client in (openai_client, anthropic_client):
            if llm_client is not None:
                stack.push_async_callback(llm_client.close)
        yield Activities(
            http=HttpActivities(
                http_client,
                max_response_bytes=settings.outbound_max_response_bytes,
                secrets=secrets,
                webhook_signer=webhook_signer(settings),
                redis=redis,
                codec=codec,
            ),
            store=StoreActivities(redis, codec),
            status=status,
            llm=LlmActivities(
                openai=openai_client,
                anthropic=anthropic_client,
                openai_api=settings.openai_api,
                default_max_tokens=settings.llm_max_tokens,
                redis=redis,
                fallback_chain=settings.llm_fallback_chain,
                fallback_max_wait=timedelta(seconds=settings.llm_fallback_max_wait_seconds),
                billing=Billing(
                    load_prices(settings.llm_prices_file),
                    tenant_budgets=settings.tenant_budgets,
                    redis=redis,
                ),
                rate_limiter=(
                    RateLimiter(
                        redis,
                        settings.llm_rate_limits,
                        max_wait_seconds=MAX_RATE_LIMIT_WAIT.total_seconds(),
                    )
                    if settings.llm_rate_limiter
                    else None
                ),
            ),
        )


def build_workers(
    client: Client,
    settings: Settings,
    activities: Activities,
    *,
    main: bool = True,
    endpoints: Sequence[str] = (),
    workflow_runner: WorkflowRunner = WORKFLOW_RUNNER,
) -> list[Worker]:
    """The main worker (workflows + default calls) and one worker per endpoint queue;
    `workflow_runner` is production's unless a test asks for the sandbox."""
    workers = []
    if main:
        runner = workflow_runner
        if activities.status is not None:
            published = {DagWorkflow.__name__, InstructionWorkflow.__name__}
            runner = PublishingRunner(workflow_runner, activities.status, published)
        workers.append(
            Worker(
                client,
                task_queue=settings.task_queue,
                workflows=[
                    DagWorkflow,
                    InstructionWorkflow,
                    WebhookOutboxWorkflow,
                    MapBatchWorkflow,
                ],
                workflow_runner=runner,
                workflow_failure_exception_types=UNDECODABLE_FAILS_THE_RUN,
                graceful_shutdown_timeout=timedelta(seconds=settings.worker_drain_seconds),
                max_concurrent_workflow_tasks=settings.worker_workflow_task_slots,
                max_concurrent_local_activities=settings.worker_local_activity_slots,
                activities=[
                    activities.http.call_http,
                    activities.http.send_webhook,
                    SegmentActivities(activities.http.attempt).run_dag_segment,
                    activities.store.read_selection,
                    activities.store.write_outputs,
                    activities.store.read_values,
                    activities.llm.call_llm,
                    activities.llm.judge_condition,
                    activities.llm.choose_route,
                ],
            )
        )
    for name in endpoints:
        # An endpoint worker makes HTTP calls only: steps routed to it, and the proxy API's
        # one-call workflows.
        workers.append(
            Worker(
                client,
                task_queue=name,
                workflows=[EndpointCallWorkflow],
                workflow_runner=workflow_runner,
                workflow_failure_exception_types=UNDECODABLE_FAILS_THE_RUN,
                graceful_shutdown_timeout=timedelta(seconds=settings.worker_drain_seconds),
                activities=[activities.http.call_http],
            )
        )
    return workers


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register the search attributes the gateway sets on runs, if the server lacks them.

    The embedded dev server and the compose stack register them already; this covers an
    existing server given by `TEMPORAL_ADDRESS` or a profile. Where the operator API is not
    allowed (as on Temporal Cloud), it says what to run instead of failing.
    """
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        missing = {
            name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
            for name in SEARCH_ATTRIBUTES
            if name not in listed.custom_attributes
        }
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
            )
            log.info("registered search attributes %s", ", ".join(sorted(missing)))
    except RPCError as exc:
        log.warning(
            "could not check or register search attributes (%s); runs cannot start until they"
            " exist: temporal operator search-attribute create --namespace %s %s",
            exc.message,
            namespace,
            " ".join(f"--name {name} --type Keyword" for name in SEARCH_ATTRIBUTES),
        )


async def check_blob_ttl(client: Client, settings: Settings) -> None:
    """Warn when stored payloads could expire before the histories that reference them.

    A blob must outlive the longest run plus the namespace's retention: a run whose blob is
    gone can no longer be replayed, queried or read back (`PayloadExpired`).
    """
    try:
        described = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=client.namespace)
        )
    except RPCError as exc:
        log.warning(
            "could not read the namespace's retention to check PAYLOAD_BLOB_TTL_SECONDS"
            " against it: %s",
            exc.message,
        )
        return
    retention = described.config.workflow_execution_retention_ttl.ToTimedelta()
    longest_run = timedelta(
        seconds=max(MAX_RUN_TIMEOUT_SECONDS, settings.instruction_run_timeout_seconds)
        + settings.run_timeout_grace_seconds
    )
    needed = longest_run + retention
    if timedelta(seconds=settings.payload_blob_ttl_seconds) < needed:
        log.warning(
            "PAYLOAD_BLOB_TTL_SECONDS=%d is shorter than the longest run (%s) plus namespace"
            " %r's retention (%s): raise it to at least %d, or the large payloads of finished"
            " runs will expire before their histories",
            settings.payload_blob_ttl_seconds,
            longest_run,
            client.namespace,
            retention,
            int(needed.total_seconds()),
        )


async def run(settings: Settings, *, main: bool, endpoints: Sequence[str]) -> None:
    service = settings.otel_service_name or WORKER_SERVICE
    tracing = setup_tracing(service, settings.otel_exporter_otlp_endpoint)
    try:
        await serve(settings, main=main, endpoints=endpoints, service=service)
    finally:
        if tracing is not None:
            tracing.shutdown()  # the last spans are exported before the process ends


async def serve(settings: Settings, *, main: bool, endpoints: Sequence[str], service: str) -> None:
    client = await connect_temporal(
        settings,
        interceptors=temporal_interceptors(worker=True),
        runtime=worker_runtime(settings.worker_metrics_address, service),
    )
    if main:
        await ensure_search_attributes(client, client.namespace)
        await check_blob_ttl(client, settings)
    async with open_activities(settings) as activities:
        workers = build_workers(client, settings, activities, main=main, endpoints=endpoints)
        queues = ([settings.task_queue] if main else []) + list(endpoints)
        log.info(
            "worker polling %s on %s, namespace %s",
            ", ".join(queues),
            client.service_client.config.target_host,
            client.namespace,
        )
        if settings.worker_metrics_address:
            log.info("metrics at http://%s/metrics", settings.worker_metrics_address)
        await run_until_signalled(workers, settings.worker_drain_seconds)


async def run_until_signalled(workers: Sequence[Worker], drain_seconds: float) -> None:
    """Run the workers until SIGTERM or SIGINT, then drain them: polling stops at once, and
    running activities get `drain_seconds` to finish before they are cancelled, so a deploy
    or a scale-down loses no work and retries nothing (Ctrl-C twice stops at once)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    running = [asyncio.create_task(worker.run()) for worker in workers]
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([*running, stopped], return_when=asyncio.FIRST_COMPLETED)
    if stop.is_set():
        log.info("draining: running activities have %gs to finish", drain_seconds)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await asyncio.gather(*(worker.shutdown() for worker in workers))
    stopped.cancel()
    await asyncio.gather(*running)  # a worker that failed on its own raises here


def configure_logging(log_format: LogFormat | None = None) -> None:
    """JSON lines (or text, `LOG_FORMAT`) on stderr; httpx's URL-bearing lines kept out."""
    telemetry.configure_logging(log_format)
    quiet_http_client_logs()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Workflow Station Temporal worker")
    parser.add_argument(
        "--endpoint",
        action="append",
        default=[],
        help="also serve this endpoint worker's task queue (repeatable; 'all' for every"
        " name in ENDPOINT_WORKERS)",
    )
    parser.add_argument(
        "--endpoints-only", action="store_true", help="serve only the --endpoint queues"
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    endpoints: list[str] = []
    for name in args.endpoint:
        endpoints.extend(settings.endpoint_workers if name == "all" else [name])
    if args.endpoints_only and not endpoints:
        parser.error("--endpoints-only needs at least one --endpoint NAME (or --endpoint all)")
    unknown = sorted(set(endpoints) - set(settings.endpoint_workers))
    if unknown:
        parser.error(
            f"unknown endpoint worker(s) {unknown}; ENDPOINT_WORKERS lists"
            f" {settings.endpoint_workers}"
        )
    configure_logging(settings.log_format)
    try:
        asyncio.run(run(settings, main=not args.endpoints_only, endpoints=endpoints))
    except KeyboardInterrupt:
        pass
    exit_drained()


def exit_drained() -> NoReturn:
    """Exit 0 once the workers have drained, without the interpreter's teardown.

    The SDK's native threads can still call into Python while the interpreter finalizes,
    which aborts the process (`Fatal Python error: PyGILState_Release`, temporalio/sdk-python
    issue 300; two of three runs of a history recorder here): a clean drain would end with
    SIGABRT, and an orchestrator would count a crash. Everything is flushed first: the
    workers have stopped, tracing was shut down by `run`, and the log handlers are closed.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
