"""Local HTTP services for the tests: pipeline targets and a webhook receiver.

Real servers on loopback (uvicorn), so activities make real HTTP calls.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Serve an ASGI app on 127.0.0.1 in this event loop; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 20
    while not server.started:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise TimeoutError("test server did not start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class TargetState:
    """What the target service saw, for assertions."""

    calls: Counter[str] = field(default_factory=Counter)
    requests: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    hooks: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    hook_bodies: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    hook_attempts: Counter[str] = field(default_factory=Counter)
    #: Receivers (`/hooks/{key}`) answering 500 until their key is removed.
    hooks_down: set[str] = field(default_factory=set)
    #: Calls of `/work/…` by their `Idempotency-Key`: what a de-duplicating target would see.
    deliveries: Counter[str] = field(default_factory=Counter)
    #: `/work/…` calls answered, by key (a call cut off by a crash is counted, not answered).
    answered: Counter[str] = field(default_factory=Counter)


async def _describe(request: Request) -> dict[str, Any]:
    raw = await request.body()
    body: Any
    try:
        body = await request.json() if raw else None
    except ValueError:
        body = raw.decode()
    return {
        "method": request.method,
        "path": request.url.path,
        "query": dict(request.query_params),
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "json": body,
    }


def json_document(size: int) -> dict[str, Any]:
    """A JSON object of about `size` bytes: numbered 1 KiB records, as a large API page."""
    records = max(1, size // 1024)
    return {
        "count": records,
        "items": [{"n": n, "text": f"{n:08d}" + "x" * 990} for n in range(records)],
    }


@functools.lru_cache(maxsize=4)
def json_document_bytes(size: int) -> bytes:
    return json.dumps(json_document(size)).encode()


def create_target_app() -> tuple[FastAPI, TargetState]:
    app = FastAPI()
    state = TargetState()
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    @app.api_route("/echo/{key}", methods=methods)
    async def echo(key: str, request: Request) -> dict[str, Any]:
        described = await _describe(request)
        state.calls[key] += 1
        state.requests[key].append(described)
        return described

    @app.api_route("/record/{key}", methods=methods)
    @app.api_route("/record/{key}/{rest:path}", methods=methods)
    async def record(key: str, request: Request) -> dict[str, Any]:
        """Records the request like /echo, but answers without repeating any of it."""
        state.calls[key] += 1
        state.requests[key].append(await _describe(request))
        return {"ok": True, "calls": state.calls[key]}

    @app.api_route("/reflect/{code}", methods=methods)
    async def reflect(code: int, request: Request) -> Response:
        """Answers `code` with the request it received, as a careless API's error page would."""
        return JSONResponse(await _describe(request), status_code=code)

    @app.api_route("/slow/{key}", methods=methods)
    async def slow(key: str, request: Request, ms: int = 200) -> dict[str, Any]:
        started = time.monotonic()
        state.calls[key] += 1
        await asyncio.sleep(ms / 1000)
        state.spans[key] = (started, time.monotonic())
        return {"key": key, "slept_ms": ms}

    @app.api_route("/work/{key}", methods=methods)
    async def work(key: str, request: Request, ms: int = 200) -> dict[str, Any]:
        """A step that takes `ms` and answers with its key and input."""
        state.calls[key] += 1
        state.deliveries[request.headers.get("idempotency-key", "")] += 1
        raw = await request.body()
        await asyncio.sleep(ms / 1000)
        state.answered[key] += 1
        return {"key": key, "input": json.loads(raw) if raw else None}

    @app.api_route("/status/{key}/{code}", methods=methods)
    async def status(key: str, code: int, retry_after: str | None = None) -> Response:
        state.calls[key] += 1
        headers = {"Retry-After": retry_after} if retry_after else None
        return JSONResponse({"error": f"status {code}"}, status_code=code, headers=headers)

    @app.api_route("/flaky/{key}", methods=methods)
    async def flaky(key: str, request: Request, failures: int = 1, code: int = 503) -> Response:
        state.calls[key] += 1
        state.requests[key].append(await _describe(request))
        if state.calls[key] <= failures:
            return JSONResponse({"error": "try again"}, status_code=code)
        return JSONResponse({"ok": True, "calls": state.calls[key]})

    @app.get("/text/{key}")
    async def text(key: str) -> PlainTextResponse:
        state.calls[key] += 1
        return PlainTextResponse(f"plain text for {key}")

    @app.post("/openai/{key}")
    async def openai_shaped(key: str, request: Request) -> dict[str, Any]:
        body = await request.json()
        state.calls[key] += 1
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"summary of {body.get('text')}"},
                }
            ],
        }

    @app.get("/loop/{key}")
    async def loop(key: str) -> Response:
        state.calls[key] += 1
        return Response(status_code=302, headers={"Location": f"/loop/{key}"})

    @app.get("/login/{key}")
    async def login(key: str, next: str | None = None) -> Response:
        """Hands out a session cookie, like a site that logs whoever calls it in."""
        state.calls[key] += 1
        response: Response = (
            Response(status_code=302, headers={"Location": next})
            if next
            else JSONResponse({"logged_in": key})
        )
        response.set_cookie("sid", f"session-of-{key}", path="/")
        return response

    @app.api_route("/redirect/{key}", methods=methods)
    async def redirect(key: str, to: str, status: int = 302) -> Response:
        state.calls[key] += 1
        return Response(status_code=status, headers={"Location": to})

    @app.get("/big/{size}")
    async def big(size: int) -> PlainTextResponse:
        return PlainTextResponse("x" * size)

    @app.get("/json/{size}")
    async def json_document(size: int) -> Response:
        """About `size` bytes of JSON, the same for the same size (see `json_document`)."""
        return Response(json_document_bytes(size), media_type="application/json")

    @app.post("/sink/{key}")
    async def sink(key: str, request: Request) -> dict[str, Any]:
        """Record a request and answer briefly, however large the request was."""
        state.calls[key] += 1
        state.requests[key].append(await _describe(request))
        return {"received": int(request.headers.get("content-length", 0))}

    @app.get("/deep/{depth}")
    async def deep(depth: int) -> Response:
        # Written by hand: the JSON encoder itself would recurse this deep.
        body = "[" * depth + "]" * depth
        return Response(body, media_type="application/json")

    @app.post("/hooks/{key}")
    async def hook(key: str, request: Request) -> Response:
        """A webhook receiver: records each event it accepts (with its headers, and the raw
        body for signature checks); answers 500 while its key is in `hooks_down`."""
        raw = await request.body()
        state.hook_attempts[key] += 1
        if key in state.hooks_down:
            return JSONResponse({"error": "receiver down"}, status_code=500)
        event = json.loads(raw)
        event["_headers"] = {k.lower(): v for k, v in request.headers.items()}
        state.hooks[key].append(event)
        state.hook_bodies[key].append(raw)
        return JSONResponse({"ok": True})

    @app.post("/hang/{key}")
    async def hang(key: str) -> dict[str, Any]:
        state.calls[key] += 1
        await asyncio.sleep(3600)
        return {}

    return app, state
