"""A local stand-in for the OpenAI and Anthropic HTTP APIs, so the real SDKs can be tested offline.

The scriptable half of `examples/llm_stand_in.py` (which `make dev` serves when no provider is
configured): that module speaks the APIs, this one adds rules and recording.

`FakeLLMServer` serves a FastAPI app with uvicorn on 127.0.0.1 (a free port) in a background
thread, so it answers while the test's event loop is busy awaiting the SDK, and works from sync
and async code alike. It speaks enough of each API for the real SDKs to parse its answers:

- OpenAI Chat Completions: `POST /v1/chat/completions` (incl. `response_format` json_schema)
- OpenAI Responses: `POST /v1/responses` (incl. `text.format` json_schema)
- Anthropic Messages: `POST /v1/messages` (text blocks; a forced tool gets a `tool_use` block)

Every answer carries real-shaped `usage`, counting one token per whitespace-separated word.

Scripting. Rules are tried in the order they were added; the first that matches and has uses
left answers. Without a matching rule the default answers: the echo `"<model>: <last user
message>"` for plain requests, or, when the request asks for structured output, JSON built from
the requested schema (first enum value, `true` for booleans, the echo for strings).

    async with FakeLLMServer() as fake:
        client = AsyncOpenAI(base_url=fake.base_url_openai, api_key="sk-test", max_retries=0)
        claude = AsyncAnthropic(base_url=fake.base_url_anthropic, api_key="sk-ant-test")
        fake.reply("hello")                         # the next request only (times=1)
        fake.reply_json({"verdict": True, "reason": "ok"})
        fake.fail(status=429, times=2, retry_after=3)
        fake.when("summarise").reply("a summary")   # every matching request (times=None)
        fake.when(provider="anthropic").fail(529)
        fake.when(model="gpt-x").respond(lambda req: req.last_user_message.upper())
        ...
        fake.requests[-1].json["messages"], fake.requests[-1].api_key
        fake.limit(requests_per_minute=600)         # per API key, a sliding window; 429 past it
        fake.limits.rejected                        # how many requests the limit refused

A request with `"stream": true` gets its answer as the provider's stream events
(`examples/llm_stand_in_streams.py`). Every answer carries the provider's rate-limit headers
(`tests/fakes/llm_limits.py`).

Run it alone (default rule only) with `python -m tests.fakes.llm_server --port 8089`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

from examples.llm_stand_in import (
    API_OF_PATH,
    BODY_BUILDERS,
    Api,
    Provider,
    RecordedRequest,
    count_tokens,
    default_answer,
    error_response,
    parse_request,
    sample_for_schema,
    validate_request,
)
from examples.llm_stand_in_streams import answer_response
from tests.fakes.llm_limits import RateLimits

__all__ = ["FakeLLM", "FakeLLMServer", "RecordedRequest", "count_tokens", "sample_for_schema"]

logger = logging.getLogger(__name__)


# What a rule answers with.


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Json:
    value: Any


@dataclass(frozen=True)
class _Dynamic:
    make: Callable[[RecordedRequest], str]


@dataclass(frozen=True)
class _Refusal:
    reason: str


@dataclass(frozen=True)
class _Error:
    status: int
    message: str | None
    retry_after: str | None


_Outcome = _Text | _Json | _Dynamic | _Refusal | _Error


@dataclass
class Rule:
    """A scripted answer; `hits` counts the requests it answered."""

    matches: Callable[[RecordedRequest], bool]
    outcome: _Outcome
    remaining: int | None
    delay: float = 0.0
    usage: tuple[int, int] | None = None
    hits: int = 0


class RuleBuilder:
    """Returned by `FakeLLM.when(...)`: pick what matching requests get."""

    def __init__(self, fake: FakeLLM, matches: Callable[[RecordedRequest], bool]) -> None:
        self._fake = fake
        self._matches = matches

    def reply(
        self,
        text: str,
        *,
        times: int | None = None,
        delay: float = 0.0,
        usage: tuple[int, int] | None = None,
    ) -> Rule:
        """Answer with this text (also for structured-output requests: the fallback path)."""
        return self._fake._add(self._matches, _Text(text), times, delay, usage)

    def reply_json(
        self,
        value: Any,
        *,
        times: int | None = None,
        delay: float = 0.0,
        usage: tuple[int, int] | None = None,
    ) -> Rule:
        """Answer with this value as JSON text, or as the input of a forced Anthropic tool."""
        return self._fake._add(self._matches, _Json(value), times, delay, usage)

    def respond(
        self,
        make: Callable[[RecordedRequest], str],
        *,
        times: int | None = None,
        delay: float = 0.0,
    ) -> Rule:
        """Answer with text computed from the request."""
        return self._fake._add(self._matches, _Dynamic(make), times, delay, None)

    def refuse(self, reason: str = "I can't help with that.", *, times: int | None = None) -> Rule:
        """Answer with each API's refusal: `message.refusal` (chat), a `refusal` content part
        (responses), `stop_reason: "refusal"` (messages)."""
        return self._fake._add(self._matches, _Refusal(reason), times, 0.0, None)

    def fail(
        self,
        status: int = 500,
        *,
        times: int | None = None,
        retry_after: float | str | None = None,
        message: str | None = None,
        delay: float = 0.0,
    ) -> Rule:
        """Answer with an error shaped like the provider's (429, 500, 529 overloaded, 401…)."""
        retry = None if retry_after is None else str(retry_after)
        return self._fake._add(self._matches, _Error(status, message, retry), times, delay, None)


class FakeLLM:
    """The scripting and recording half of the fake; thread-safe."""

    def __init__(self, *, expected_api_key: str | None = None) -> None:
        #: When set, requests carrying another key get the provider's 401.
        self.expected_api_key = expected_api_key
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._requests: list[RecordedRequest] = []
        #: The per-key limit (`limit`), its counts and the headers it adds to every answer.
        self.limits = RateLimits()

    # Scripting.

    def limit(
        self,
        *,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        window_seconds: float = 60.0,
    ) -> None:
        """Accept at most this many requests (and prompt tokens) per API key in any
        `window_seconds`; answer 429 with `retry-after` past it. None: no limit."""
        self.limits.set(requests_per_minute, tokens_per_minute, window_seconds)

    def when(
        self,
        contains: str | None = None,
        *,
        provider: Provider | None = None,
        api: Api | None = None,
        model: str | None = None,
        predicate: Callable[[RecordedRequest], bool] | None = None,
    ) -> RuleBuilder:
        """Match requests whose prompt (system + messages) contains `contains`, and so on.

        Rules made here answer every matching request unless given `times`.
        """

        def matches(request: RecordedRequest) -> bool:
            return (
                (contains is None or contains in request.prompt_text)
                and (provider is None or request.provider == provider)
                and (api is None or request.api == api)
                and (model is None or request.model == model)
                and (predicate is None or predicate(request))
            )

        return RuleBuilder(self, matches)

    def reply(self, text: str, *, times: int = 1, **kwargs: Any) -> Rule:
        """Answer the next request(s), whatever they are, with this text."""
        return self.when().reply(text, times=times, **kwargs)

    def reply_json(self, value: Any, *, times: int = 1, **kwargs: Any) -> Rule:
        """Answer the next request(s) with this JSON value."""
        return self.when().reply_json(value, times=times, **kwargs)

    def refuse(self, reason: str = "I can't help with that.", *, times: int = 1) -> Rule:
        """Refuse the next request(s), as each API does."""
        return self.when().refuse(reason, times=times)

    def fail(self, status: int = 500, *, times: int = 1, **kwargs: Any) -> Rule:
        """Fail the next request(s) with a provider-shaped error."""
        return self.when().fail(status, times=times, **kwargs)

    def reset(self) -> None:
        """Forget all rules and recorded requests."""
        with self._lock:
            self._rules.clear()
            self._requests.clear()
        self.limits.reset()

    def _add(
        self,
        matches: Callable[[RecordedRequest], bool],
        outcome: _Outcome,
        times: int | None,
        delay: float,
        usage: tuple[int, int] | None,
    ) -> Rule:
        rule = Rule(matches=matches, outcome=outcome, remaining=times, delay=delay, usage=usage)
        with self._lock:
            self._rules.append(rule)
        return rule

    # Recording.

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a snapshot)."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            return self._requests[-1]

    def requests_for(
        self, *, api: Api | None = None, contains: str | None = None
    ) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if (api is None or r.api == api) and (contains is None or contains in r.prompt_text)
        ]

    async def wait_for_requests(
        self, count: int, *, timeout: float = 10.0
    ) -> list[RecordedRequest]:
        """Wait until at least `count` requests arrived; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while len(seen := self.requests) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fake LLM saw {len(seen)} requests, expected {count}")
            await asyncio.sleep(0.01)
        return seen

    # Answering.

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _take_rule(self, request: RecordedRequest) -> Rule | None:
        """Record the request and pick the rule that answers it."""
        with self._lock:
            self._requests.append(request)
            for rule in self._rules:
                if rule.remaining is not None and rule.remaining <= 0:
                    continue
                if rule.matches(request):
                    rule.hits += 1
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule
            return None

    async def _answer(self, request: RecordedRequest) -> Response:
        if self.expected_api_key is not None and request.api_key != self.expected_api_key:
            self._record(request)
            return error_response(request, 401, "Invalid API key provided.", None)
        verdict = self.limits.check(
            request.api_key or "", count_tokens(request.prompt_text), request.provider
        )
        if not verdict.accepted:
            self._record(request)
            response: Response = error_response(request, 429, None, None)
        else:
            response = await self._scripted_answer(request)
        for name, value in verdict.headers.items():
            response.headers[name] = value
        return response

    async def _scripted_answer(self, request: RecordedRequest) -> Response:
        rule = self._take_rule(request)
        if rule is not None and rule.delay:
            await asyncio.sleep(rule.delay)
        outcome: _Outcome | None = rule.outcome if rule is not None else None
        if isinstance(outcome, _Error):
            return error_response(request, outcome.status, outcome.message, outcome.retry_after)
        invalid = validate_request(request)
        if invalid:
            return error_response(request, 400, invalid, None)
        value: Any
        if isinstance(outcome, _Text):
            text, value = outcome.text, None
        elif isinstance(outcome, _Dynamic):
            text, value = outcome.make(request), None
        elif isinstance(outcome, _Json):
            value = outcome.value
            text = json.dumps(value)
        else:
            text, value = default_answer(request)
        usage = rule.usage if rule is not None and rule.usage else None
        input_tokens, output_tokens = usage or (
            count_tokens(request.prompt_text),
            count_tokens(text),
        )
        body = BODY_BUILDERS[request.api](request, text, value, input_tokens, output_tokens)
        if isinstance(outcome, _Refusal):
            _make_refusal(request.api, body, outcome.reason)
        return answer_response(request, body)


def _make_refusal(api: str, body: dict[str, Any], reason: str) -> None:
    """Turn a normal answer body into that API's refusal, in place."""
    if api == "chat":
        body["choices"][0]["message"].update(content=None, refusal=reason)
    elif api == "responses":
        body["output"][0]["content"] = [{"type": "refusal", "refusal": reason}]
    else:
        body["content"] = []
        body["stop_reason"] = "refusal"


def build_app(fake: FakeLLM) -> FastAPI:
    """The HTTP face of `fake`."""
    app = FastAPI(title="Fake LLM APIs", openapi_url=None, docs_url=None, redoc_url=None)

    async def handle(http_request: Request) -> Response:
        request, is_object = await parse_request(http_request)
        if not is_object:
            fake._record(request)
            return error_response(request, 400, "The request body is not a JSON object.", None)
        return await fake._answer(request)

    for path in API_OF_PATH:
        app.add_api_route(path, handle, methods=["POST"], include_in_schema=False)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    return app


class FakeLLMServer(FakeLLM):
    """`FakeLLM` served over HTTP on 127.0.0.1 from a background thread.

    Use `async with FakeLLMServer() as fake:` or `with FakeLLMServer() as fake:`, or call
    `start()` / `stop()` yourself (e.g. in a session-scoped fixture with `reset()` per test).
    """

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, expected_api_key: str | None = None
    ) -> None:
        super().__init__(expected_api_key=expected_api_key)
        self.host = host
        self._requested_port = port
        self.port = port
        self.app = build_app(self)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def base_url(self) -> str:
        """The server's root URL, `http://127.0.0.1:<port>`."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url_openai(self) -> str:
        """For `AsyncOpenAI(base_url=...)` / `OPENAI_BASE_URL`: the root URL plus `/v1`."""
        return f"{self.base_url}/v1"

    @property
    def base_url_anthropic(self) -> str:
        """For `AsyncAnthropic(base_url=...)` / `ANTHROPIC_BASE_URL`: the root URL (the SDK adds
        `/v1/messages`)."""
        return self.base_url

    def start(self, *, timeout: float = 10.0) -> None:
        """Bind a port and serve until `stop()`; returns once the server accepts requests."""
        if self._thread is not None:
            raise RuntimeError("the fake LLM server is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            # Requests held by a `delay` must not keep the test waiting at shutdown.
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"fake-llm-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the fake LLM server did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> FakeLLMServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeLLMServer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake OpenAI/Anthropic APIs.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    server = FakeLLMServer(host=args.host, port=args.port)
    server.start()
    logger.info(
        "fake LLM APIs: OPENAI_BASE_URL=%s ANTHROPIC_BASE_URL=%s",
        server.base_url_openai,
        server.base_url_anthropic,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
