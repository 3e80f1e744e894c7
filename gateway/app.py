"""The FastAPI gateway: composition root that opens one Temporal client and one Redis client.

uvicorn gateway.app:create_app --factory --port 8000
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import metadata

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.store.clients import close_redis
from gateway import telemetry
from gateway.errors import GatewayError, answer_gateway_error, validation_detail
from gateway.events import SharedPolls
from gateway.quotas import RunSlots
from gateway.routes import (
    codec,
    control,
    dag,
    endpoints,
    graph,
    health,
    instructions,
    rerun,
    runs,
    schedules,
    schemas,
    ui,
    validate,
    webhooks,
)
from gateway.runs.reads import StatusReads
from gateway.stream_slots import StreamSlots
from gateway.telemetry import GatewayMetrics, RequestMetrics, SdkMetrics, set_up_process
from gateway.tenancy import ApiKeys, get_tenant, refuse_open_exposure
from gateway.values import is_payload_expired
from kernel.codec import EncryptionCodec
from kernel.errors import WorkflowStationError
from kernel.limits import MAX_REQUEST_DEPTH, raw_json_too_deep
from kernel.telemetry import temporal_interceptors
from settings import Settings, close_data_converter, connect_temporal, get_settings
from workflows.shared.payloads import StrictPayload


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with a JSON 413, whether or not they say their
    length up front (a chunked body is counted as it arrives)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        responded = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal responded
            responded = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not responded:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            status_code=413,
            content={
                "detail": [
                    {
                        "loc": ["body"],
                        "msg": f"request body is larger than {self.max_bytes} bytes"
                        " (MAX_REQUEST_BYTES)",
                        "type": "too_large",
                    }
                ]
            },
        )
        await response({"type": "http"}, _empty_receive, send)


class JsonDepthLimit:
    """Refuse a JSON request body nested deeper than `MAX_REQUEST_DEPTH` with a 422 before
    anything parses it: Python's parser recurses once per level, so a 100,000-deep body would
    reach the recursion limit. Runs inside `BodySizeLimit`, which bounds what is buffered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Any spelling FastAPI would parse as JSON (`Application/JSON`, `+json`) is checked.
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"").lower()
        if scope["type"] != "http" or b"json" not in content_type:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if raw_json_too_deep(body):
            response = JSONResponse(
                status_code=422,
                content={
                    "detail": [
                        {
                            "loc": ["body"],
                            "msg": f"the JSON body is nested more than {MAX_REQUEST_DEPTH}"
                            " levels deep",
                            "type": "json_too_deep",
                        }
                    ]
                },
            )
            await response(scope, _empty_receive, send)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body}]), send)


def _replay(messages: list[Message]) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    return receive


class ScopedCORS:
    """CORS for one path prefix only: the endpoint proxy routes (as the seed's endpoint workers
    answered it) and the codec endpoint (the Web UI's origin). The rest of the API stays
    same-origin.
    """

    def __init__(
        self,
        app: ASGIApp,
        prefix: str,
        allow_origins: Sequence[str],
        allow_methods: Sequence[str],
        allow_headers: Sequence[str],
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.cors = CORSMiddleware(
            app,
            allow_origins=allow_origins,
            allow_methods=allow_methods,
            allow_headers=allow_headers,
            expose_headers=["*"],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == self.prefix or path.startswith(self.prefix + "/")):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        raise exc
    # The route's body model, when it is a strict payload: its unknown keys are named with
    # the key meant. Other bodies (the instruction routes word their own) keep their messages.
    body_field = getattr(request.scope.get("route"), "body_field", None)
    body = getattr(getattr(body_field, "field_info", None), "annotation", None)
    if not (isinstance(body, type) and issubclass(body, StrictPayload)):
        body = None
    return JSONResponse(status_code=422, content={"detail": validation_detail(exc.errors(), body)})


async def _payload_expired(request: Request, exc: Exception) -> JSONResponse:
    if not is_payload_expired(exc):
        raise exc
    return JSONResponse(status_code=410, content={"detail": str(exc)})


#: Probes and scrapes an orchestrator sends to a replica by its IP address, which no allowed
#: host names.
PROBE_PATHS = frozenset({"/health", "/health/live", "/health/ready", "/metrics"})


class HostCheck:
    """The Host check against DNS rebinding, for every path but the health probes and
    `/metrics`: Kubernetes, load balancers and Prometheus reach a replica at its IP address,
    and their answers (up or not, which queue lacks a worker, counters without tenant or run
    labels) are nothing a rebinding page could use."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.checked = TrustedHostMiddleware(app, allowed_hosts=allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") in PROBE_PATHS:
            await self.app(scope, receive, send)
        else:
            await self.checked(scope, receive, send)


#: RPC failures that mean Temporal itself is out of reach: down, restarting, cut off.
TEMPORAL_UNREACHABLE = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED})


async def _temporal_unreachable(request: Request, exc: Exception) -> JSONResponse:
    """A 503 that says Temporal is out of reach (the client retried for a while already),
    instead of a bare 500."""
    if not isinstance(exc, RPCError) or exc.status not in TEMPORAL_UNREACHABLE:
        raise exc
    client: Client = request.app.state.temporal
    return JSONResponse(
        status_code=503,
        content={
            "detail": f"Temporal at {client.service_client.config.target_host} is not answering"
            f" ({exc.message}); runs keep their state there and go on once it is back."
            " Try again shortly; GET /health shows when it is."
        },
        headers={"Retry-After": "5"},
    )


def package_version() -> str:
    """The version in `pyproject.toml`, as the installed package's metadata says it.

    `make dev`, `make test` and the image install the package, so its metadata is there; a
    checkout imported without installing says so rather than guessing a number.
    """
    try:
        return metadata.version("workflow-station")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway app. Without `settings`, as uvicorn's factory calls it, it is the
    process's composition root: settings from the environment, and the process's logging
    and tracing set up (`gateway.telemetry.set_up_process`)."""
    process = settings is None
    settings = settings or get_settings()
    refuse_open_exposure(settings)
    metrics = GatewayMetrics()
    # One Temporal runtime per process: apps a test builds share the default one.
    sdk_metrics = SdkMetrics(metrics.registry) if process else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.api_keys = ApiKeys(settings.gateway_api_keys)
        keys = settings.encryption_keys
        app.state.payload_codec = EncryptionCodec(keys) if keys else None
        app.state.metrics = metrics
        app.state.temporal = await connect_temporal(
            settings,
            interceptors=[metrics.interceptor(), *temporal_interceptors(worker=False)],
            runtime=sdk_metrics.runtime if sdk_metrics else None,
        )
        app.state.redis = Redis.from_url(settings.effective_redis_url)
        app.state.run_slots = RunSlots(
            app.state.redis, app.state.temporal, settings.tenant_max_running_runs
        )
        app.state.stream_slots = StreamSlots(app.state.redis, settings.tenant_max_event_streams)
        app.state.shared_polls = SharedPolls()
        app.state.status_reads = StatusReads()
        try:
            async with sdk_metrics.draining() if sdk_metrics else contextlib.nullcontext():
                yield
        finally:
            await close_redis(app.state.redis)
            await close_data_converter(app.state.temporal.data_converter)

    app = FastAPI(
        title="Workflow Station",
        description="Durable multi-step LLM and HTTP pipelines on Temporal.",
        version=package_version(),
        lifespan=lifespan,
    )
    # What services refuse (`gateway.errors`): one handler, the status each error names.
    app.add_exception_handler(GatewayError, answer_gateway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RPCError, _temporal_unreachable)
    app.add_middleware(JsonDepthLimit)
    # A run whose history references a payload that has expired from Redis.
    app.add_exception_handler(WorkflowStationError, _payload_expired)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(
        ScopedCORS,
        prefix=endpoints.router.prefix,
        allow_origins=settings.cors_allow_origins,
        allow_methods=settings.cors_allow_methods,
        allow_headers=settings.cors_allow_headers,
    )
    # The Web UI calls the codec endpoint from the browser: its origin, and only it.
    app.add_middleware(
        ScopedCORS,
        prefix=codec.router.prefix,
        allow_origins=settings.temporal_ui_origins,
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
    )
    app.add_middleware(RequestMetrics, metrics=metrics)
    # Outermost: a request for a host name we do not serve (DNS rebinding) gets nothing.
    app.add_middleware(HostCheck, allowed_hosts=settings.gateway_allowed_hosts)
    if process:
        set_up_process(app, settings)
    app.include_router(health.router)
    # Operators' routes, like /health: no tenant key (the labels name no tenant or run).
    app.include_router(telemetry.router)
    # Every other route needs a tenant: 401 without a valid key once keys are configured.
    authenticated = [Depends(get_tenant)]
    app.include_router(dag.router, dependencies=authenticated)
    app.include_router(validate.router, dependencies=authenticated)
    app.include_router(graph.router, dependencies=authenticated)  # before runs' `{id:path}`
    app.include_router(runs.router, dependencies=authenticated)
    app.include_router(rerun.router, dependencies=authenticated)
    app.include_router(control.router, dependencies=authenticated)
    app.include_router(webhooks.router, dependencies=authenticated)
    app.include_router(instructions.router, dependencies=authenticated)
    app.include_router(endpoints.router, dependencies=authenticated)
    app.include_router(schedules.router, dependencies=authenticated)
    # The codec has its own credential (CODEC_AUTH_TOKEN): the Web UI holds no tenant key.
    app.include_router(codec.router)
    # Public documents, like /openapi.json: the payload formats, nothing of a tenant's.
    app.include_router(schemas.router)
    # The run page: static files holding no data; the calls they make send the tenant's key.
    app.include_router(ui.router)
    return app
