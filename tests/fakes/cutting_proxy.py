"""A reverse proxy in front of a gateway that cuts a run's event stream: the first
`cuts` event streams are forwarded until one whole event has passed, then the connection is
dropped mid-stream, as a restarting load balancer or a lost network would. Every event
stream request's `Last-Event-ID` is recorded, so a test sees how the client resumed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

#: Headers not forwarded: the proxy's own connection and length are its own.
HOP_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding"})


class StreamCut(Exception):
    """Raised inside a response body: the server drops the connection mid-stream."""


@dataclass
class CuttingProxy:
    upstream: str
    cuts: int = 1
    resumed_from: list[str | None] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/{path:path}", self.forward, methods=["GET", "POST", "PUT"])]
        )

    async def forward(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        url = f"{self.upstream}{request.url.path}"
        if request.url.query:
            url += f"?{request.url.query}"
        if request.url.path.endswith("/events"):
            self.resumed_from.append(request.headers.get("last-event-id"))
            cut = self.cuts > 0
            self.cuts -= int(cut)
            return StreamingResponse(self.stream(url, headers, cut), media_type="text/event-stream")
        async with httpx.AsyncClient(timeout=60) as http:
            answer = await http.request(
                request.method, url, headers=headers, content=await request.body()
            )
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
        kept.pop("content-encoding", None)
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    async def stream(self, url: str, headers: dict[str, str], cut: bool) -> AsyncIterator[bytes]:
        async with (
            httpx.AsyncClient(timeout=60) as http,
            http.stream("GET", url, headers=headers) as answer,
        ):
            event_lines = 0
            async for line in answer.aiter_lines():
                yield f"{line}\n".encode()
                event_lines += line.startswith("id:")
                if cut and not line and event_lines:
                    raise StreamCut
