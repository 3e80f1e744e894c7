"""The FastAPI gateway: composition root that opens one Temporal client and one Redis client.

uvicorn gateway.app:create_app --factory --port 8000
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from activities.errors import WorkflowStationError
from activities.store.clients import close_redis
from gateway.routes import dag, endpoints, health, instructions
from gateway.values import is_payload_expired
from settings import Settings, close_data_converter, connect_temporal, get_settings


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


class ScopedCORS:
    """CORS, as the seed's endpoint workers answered it, for one path prefix only.

    Browsers call the endpoint proxy routes directly; the rest of the API stays same-origin.
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
    detail = [
        {key: error[key] for key in ("loc", "msg", "type") if key in error}
        for error in exc.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": detail})


async def _payload_expired(request: Request, exc: Exception) -> JSONResponse:
    if not is_payload_expired(exc):
        raise exc
    return JSONResponse(status_code=410, content={"detail": str(exc)})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.temporal = await connect_temporal(settings)
        app.state.redis = Redis.from_url(settings.effective_redis_url)
        try:
            yield
        finally:
            await close_redis(app.state.redis)
            await close_data_converter(app.state.temporal.data_converter)

    app = FastAPI(
        title="Workflow Station",
        description="Durable multi-step LLM and HTTP pipelines on Temporal.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_exception_handler(RequestValidationError, _validation_error)
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
    app.include_router(health.router)
    app.include_router(dag.router)
    app.include_router(instructions.router)
    app.include_router(endpoints.router)
    return app
