"""`make dev`'s examples (`cli.examples`) report what goes wrong and return; nothing they meet
escapes to the supervisor that keeps the stack up. Here a gateway takes the instruction run
and answers every other request 429, as when another local client (a load test, a few
`--follow`s) uses up the open tenant's request rate while the examples run."""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cli.examples import EXAMPLE_RUNS, submit_examples
from settings import Settings
from tests.fakes.targets import serve


async def too_many(request: Request) -> JSONResponse:
    if request.method == "POST" and request.url.path == "/":
        return JSONResponse({"instanceId": "example-run", "status": {"status": "queued"}})
    return JSONResponse(
        {"detail": "tenant 'open' is over 50 requests a second"},
        status_code=429,
        headers={"Retry-After": "1"},
    )


async def test_the_examples_report_a_429_and_return(capsys: pytest.CaptureFixture[str]) -> None:
    limited = Starlette(routes=[Route("/{path:path}", too_many, methods=["GET", "POST"])])
    async with serve(limited) as url:
        port = int(url.rsplit(":", 1)[1])
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, gateway_port=port, openai_api_key="sk-test"
        )
        ok = await asyncio.to_thread(submit_examples, settings)

    assert ok is False
    printed = capsys.readouterr().out
    # Each example met a 429 (the DAG and LLM examples starting, the instruction example
    # following its run), said so, and the next one ran.
    assert len(EXAMPLE_RUNS) == 3
    assert printed.count("HTTP 429: tenant 'open' is over 50 requests a second") == 3
    assert printed.count("the stack keeps running") == 3
