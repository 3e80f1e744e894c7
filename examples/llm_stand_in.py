"""A stand-in for the OpenAI and Anthropic HTTP APIs, so examples run with no provider key.

`make dev` serves `app` inside the demo service (`examples/demo_service.py`, under `/llm`)
when no provider is configured, and points the worker's `OPENAI_BASE_URL` and
`ANTHROPIC_BASE_URL` at it. It speaks enough of each API for the real SDKs to parse its
answers (the test suite's scriptable fake, `tests/fakes/llm_server.py`, is built on this
module):

- OpenAI Chat Completions: `POST /v1/chat/completions` (incl. `response_format` json_schema)
- OpenAI Responses: `POST /v1/responses` (incl. `text.format` json_schema)
- Anthropic Messages: `POST /v1/messages` (text blocks; a forced tool gets a `tool_use` block)
- each of them streamed when asked (`"stream": true`, `examples/llm_stand_in_streams.py`)

It answers every request the same way: the echo `"<model>: <last user message>"`, or, when
the request asks for structured output, JSON built from the requested schema (first enum
value, `true` for booleans, the echo for strings), with real-shaped `usage` counting one
token per whitespace-separated word. It thinks nothing: it shows the pipeline's plumbing.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

Api = Literal["chat", "responses", "messages"]
Provider = Literal["openai", "anthropic"]

API_OF_PATH: dict[str, Api] = {
    "/v1/chat/completions": "chat",
    "/v1/responses": "responses",
    "/v1/messages": "messages",
}


def text_of(content: Any) -> str:
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
            found.append(("system", text_of(body["system"])))
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
                found.append((role, text_of(item.get("content"))))
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


def default_answer(request: RecordedRequest) -> tuple[str, Any]:
    """The stand-in's answer: its text, and the JSON value when structured output was asked."""
    echo = f"{request.model}: {request.last_user_message}"
    schema = request.json_schema
    if schema is None:
        return echo, None
    value = sample_for_schema(schema, echo)
    return json.dumps(value), value


def validate_request(request: RecordedRequest) -> str | None:
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


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def request_id_header(request: RecordedRequest) -> dict[str, str]:
    if request.provider == "anthropic":
        return {"request-id": new_id("req_")}
    return {"x-request-id": new_id("req_")}


def chat_body(
    request: RecordedRequest, text: str, value: Any, input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    return {
        "id": new_id("chatcmpl-"),
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


def responses_body(
    request: RecordedRequest, text: str, value: Any, input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    body = request.json
    now = int(time.time())
    return {
        "id": new_id("resp_"),
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
                "id": new_id("msg_"),
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


def messages_body(
    request: RecordedRequest, text: str, value: Any, input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    tool = request.forced_tool
    if tool is not None and isinstance(value, dict):
        content: list[dict[str, Any]] = [
            {"type": "tool_use", "id": new_id("toolu_"), "name": tool["name"], "input": value}
        ]
        stop_reason = "tool_use"
    else:
        content = [{"type": "text", "text": text}]
        stop_reason = "end_turn"
    return {
        "id": new_id("msg_"),
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


def error_response(
    request: RecordedRequest, status: int, message: str | None, retry_after: str | None
) -> JSONResponse:
    headers = request_id_header(request)
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


BODY_BUILDERS = {"chat": chat_body, "responses": responses_body, "messages": messages_body}


async def parse_request(http_request: Request) -> tuple[RecordedRequest, bool]:
    """The request as the SDK sent it, and whether its body was a JSON object."""
    path = http_request.url.path.removeprefix(http_request.scope.get("root_path", ""))
    try:
        payload = await http_request.json()
    except ValueError:
        payload = None
    request = RecordedRequest(
        api=API_OF_PATH[path],
        path=path,
        json=payload if isinstance(payload, dict) else {},
        headers={name.lower(): value for name, value in http_request.headers.items()},
    )
    return request, isinstance(payload, dict)


async def _answer(http_request: Request) -> Response:
    request, is_object = await parse_request(http_request)
    if not is_object:
        return error_response(request, 400, "The request body is not a JSON object.", None)
    invalid = validate_request(request)
    if invalid:
        return error_response(request, 400, invalid, None)
    text, value = default_answer(request)
    tokens = (count_tokens(request.prompt_text), count_tokens(text))
    body = BODY_BUILDERS[request.api](request, text, value, *tokens)
    # Imported here: that module builds on this one's names.
    from examples.llm_stand_in_streams import answer_response

    return answer_response(request, body)


app = FastAPI(title="Stand-in LLM APIs", openapi_url=None, docs_url=None, redoc_url=None)
for _path in API_OF_PATH:
    app.add_api_route(_path, _answer, methods=["POST"], include_in_schema=False)
