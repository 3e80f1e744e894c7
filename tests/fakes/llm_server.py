"""A local stand-in for the OpenAI and Anthropic HTTP APIs, so the real SDKs can be tested offline.

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
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

logger = logging.getLogger(__name__)

Api = Literal["chat", "responses", "messages"]
Provider = Literal["openai", "anthropic"]

_API_OF_PATH: dict[str, Api] = {
    "/v1/chat/completions": "chat",
    "/v1/responses": "responses",
    "/v1/messages": "messages",
}


def _text_of(content: Any) -> str:
    """The text of a message's content: a string or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def count_tokens(text: str) -> int:
    """The fake's tokenizer: one token per whitespace-separated word, at least one."""
    return max(1, len(text.split()))


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the SDK sent it."""

    api: Api
    path: str
    json: dict[str, Any]
    #: Header names are lower-cased.
    headers: dict[str, str]

    @property
    def provider(self) -> Provider:
        return "anthropic" if self.api == "messages" else "openai"

    @property
    def model(self) -> str:
        return str(self.json.get("model", ""))

    @property
    def api_key(self) -> str | None:
        """The key the SDK sent: `Authorization: Bearer …` (OpenAI) or `x-api-key` (Anthropic)."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None

    def _messages(self) -> list[tuple[str, str]]:
        """(role, text) of every message, system/developer/instructions included."""
        body = self.json
        found: list[tuple[str, str]] = []
        if self.api == "messages" and body.get("system") is not None:
            found.append(("system", _text_of(body["system"])))
        if self.api == "responses":
            if body.get("instructions"):
                found.append(("system", str(body["instructions"])))
            items = body.get("input")
            if isinstance(items, str):
                return [*found, ("user", items)]
        else:
            items = body.get("messages")
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and "role" in item:
                role = "system" if item["role"] == "developer" else str(item["role"])
                found.append((role, _text_of(item.get("content"))))
        return found

    @property
    def system(self) -> str | None:
        """The system prompt: OpenAI system/developer messages or `instructions`, Anthropic
        `system`."""
        parts = [text for role, text in self._messages() if role == "system"]
        return "\n".join(parts) if parts else None

    @property
    def user_messages(self) -> list[str]:
        return [text for role, text in self._messages() if role == "user"]

    @property
    def last_user_message(self) -> str:
        users = self.user_messages
        return users[-1] if users else ""

    @property
    def prompt_text(self) -> str:
        """Everything the model would read: the system prompt and every message."""
        return "\n".join(text for _, text in self._messages())

    @property
    def forced_tool(self) -> dict[str, Any] | None:
        """Anthropic: the tool named by `tool_choice: {"type": "tool"}`, if any."""
        choice = self.json.get("tool_choice")
        if not isinstance(choice, dict) or choice.get("type") != "tool":
            return None
        for tool in self.json.get("tools") or []:
            if isinstance(tool, dict) and tool.get("name") == choice.get("name"):
                return tool
        return None

    @property
    def json_schema(self) -> dict[str, Any] | None:
        """The JSON schema the request asks the answer to follow, whatever the API."""
        body = self.json
        schema: Any = None
        if self.api == "chat":
            response_format = body.get("response_format") or {}
            if response_format.get("type") == "json_schema":
                schema = (response_format.get("json_schema") or {}).get("schema")
        elif self.api == "responses":
            text_format = (body.get("text") or {}).get("format") or {}
            if text_format.get("type") == "json_schema":
                schema = text_format.get("schema")
        else:
            tool = self.forced_tool
            if tool is not None:
                schema = tool.get("input_schema")
            else:
                output_format = (body.get("output_config") or {}).get("format") or {}
                if output_format.get("type") == "json_schema":
                    schema = output_format.get("schema")
        return schema if isinstance(schema, dict) else None


def sample_for_schema(schema: dict[str, Any], text: str) -> Any:
    """A deterministic value that satisfies a simple JSON schema (no `$ref`)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return sample_for_schema(schema[key][0], text)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return {
            name: sample_for_schema(sub, text)
            for name, sub in (schema.get("properties") or {}).items()
        }
    return {
        "array": [],
        "boolean": True,
        "integer": 0,
        "number": 0,
        "string": text,
        "null": None,
    }.get(str(kind), text)


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

    # Scripting.

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

    async def _answer(self, request: RecordedRequest) -> JSONResponse:
        if self.expected_api_key is not None and request.api_key != self.expected_api_key:
            self._record(request)
            return _error_response(request, 401, "Invalid API key provided.", None)
        rule = self._take_rule(request)
        if rule is not None and rule.delay:
            await asyncio.sleep(rule.delay)
        outcome: _Outcome | None = rule.outcome if rule is not None else None
        if isinstance(outcome, _Error):
            return _error_response(request, outcome.status, outcome.message, outcome.retry_after)
        invalid = _validate(request)
        if invalid:
            return _error_response(request, 400, invalid, None)
        echo = f"{request.model}: {request.last_user_message}"
        value: Any
        if isinstance(outcome, _Text):
            text, value = outcome.text, None
        elif isinstance(outcome, _Dynamic):
            text, value = outcome.make(request), None
        elif isinstance(outcome, _Json):
            value = outcome.value
            text = json.dumps(value)
        elif (schema := request.json_schema) is not None:
            value = sample_for_schema(schema, echo)
            text = json.dumps(value)
        else:
            text, value = echo, None
        usage = rule.usage if rule is not None and rule.usage else None
        input_tokens, output_tokens = usage or (
            count_tokens(request.prompt_text),
            count_tokens(text),
        )
        builder = {"chat": _chat_body, "responses": _responses_body, "messages": _messages_body}
        body = builder[request.api](request, text, value, input_tokens, output_tokens)
        if isinstance(outcome, _Refusal):
            _make_refusal(request.api, body, outcome.reason)
        return JSONResponse(body, headers=_request_id_header(request))


def _validate(request: RecordedRequest) -> str | None:
    """The checks the real APIs make that an activity could get wrong."""
    body = request.json
    if not body.get("model"):
        return "model: Field required"
    if request.api == "chat" and not body.get("messages"):
        return "messages: Field required"
    if request.api == "responses" and not body.get("input"):
        return "input: Field required"
    if request.api == "messages":
        if not isinstance(body.get("max_tokens"), int):
            return "max_tokens: Field required"
        if not body.get("messages"):
            return "messages: Field required"
    return None


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def _request_id_header(request: RecordedRequest) -> dict[str, str]:
    if request.provider == "anthropic":
        return {"request-id": _new_id("req_")}
    return {"x-request-id": _new_id("req_")}


def _make_refusal(api: str, body: dict[str, Any], reason: str) -> None:
    """Turn a normal answer body into that API's refusal, in place."""
    if api == "chat":
        body["choices"][0]["message"].update(content=None, refusal=reason)
    elif api == "responses":
        body["output"][0]["content"] = [{"type": "refusal", "refusal": reason}]
    else:
        body["content"] = []
        body["stop_reason"] = "refusal"


def _chat_body(
    request: RecordedRequest, text: str, value: Any, input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    return {
        "id": _new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": text,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def _responses_body(
    request: RecordedRequest, text: str, value: Any, input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    body = request.json
    now = int(time.time())
    return {
        "id": _new_id("resp_"),
        "object": "response",
        "created_at": now,
        "completed_at": now,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": request.model,
        "output": [
            {
                "id": _new_id("msg_"),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
                ],
            }
        ],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": 1.0,
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        "user": None,
        "metadata": {},
    }


def _messages_body(
    request: RecordedRequest, text: str, value: Any, input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    tool = request.forced_tool
    if tool is not None and isinstance(value, dict):
        content: list[dict[str, Any]] = [
            {"type": "tool_use", "id": _new_id("toolu_"), "name": tool["name"], "input": value}
        ]
        stop_reason = "tool_use"
    else:
        content = [{"type": "text", "text": text}]
        stop_reason = "end_turn"
    return {
        "id": _new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    }


_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
}

_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low."),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "model: not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


def _error_response(
    request: RecordedRequest, status: int, message: str | None, retry_after: str | None
) -> JSONResponse:
    headers = _request_id_header(request)
    if retry_after is not None:
        headers["retry-after"] = retry_after
    body: dict[str, Any]
    if request.provider == "anthropic":
        default_type = "api_error" if status >= 500 else "invalid_request_error"
        kind, default_message = _ANTHROPIC_ERRORS.get(status, (default_type, f"Error {status}"))
        body = {
            "type": "error",
            "error": {"type": kind, "message": message or default_message},
            "request_id": headers["request-id"],
        }
    else:
        fallback = ("server_error", None, "The server had an error while processing your request.")
        if status < 500:
            fallback = ("invalid_request_error", None, f"Error {status}")
        kind, code, default_message = _OPENAI_ERRORS.get(status, fallback)
        body = {
            "error": {
                "message": message or default_message,
                "type": kind,
                "param": None,
                "code": code,
            }
        }
    return JSONResponse(body, status_code=status, headers=headers)


def build_app(fake: FakeLLM) -> FastAPI:
    """The HTTP face of `fake`."""
    app = FastAPI(title="Fake LLM APIs", openapi_url=None, docs_url=None, redoc_url=None)

    async def handle(http_request: Request) -> JSONResponse:
        path = http_request.url.path
        try:
            payload = await http_request.json()
        except ValueError:
            payload = None
        request = RecordedRequest(
            api=_API_OF_PATH[path],
            path=path,
            json=payload if isinstance(payload, dict) else {},
            headers={name.lower(): value for name, value in http_request.headers.items()},
        )
        if not isinstance(payload, dict):
            fake._record(request)
            return _error_response(request, 400, "The request body is not a JSON object.", None)
        return await fake._answer(request)

    for path in _API_OF_PATH:
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
