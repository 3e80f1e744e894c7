"""The stand-in's streamed answers: a finished answer body re-told as each API's stream events.

A request with `"stream": true` gets the same answer as without, cut into word-sized pieces
and sent as Server-Sent Events the way each provider sends them, well enough for the real
SDKs' stream parsers and helpers (`AsyncMessageStream`, `client.responses.stream`):

- Chat Completions: `chat.completion.chunk`s (a role chunk, a content chunk per piece, a
  finish chunk, a `usage` chunk when `stream_options.include_usage`), then `[DONE]`;
- Responses: `response.created`, `output_item.added`, `content_part.added`,
  `output_text.delta` per piece, their `.done` events, `response.completed`;
- Messages: `message_start`, `content_block_start`, a `text_delta` (or `input_json_delta` for
  a forced tool) per piece, `content_block_stop`, `message_delta`, `message_stop`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

from fastapi.responses import JSONResponse, Response, StreamingResponse

from examples.llm_stand_in import Api, RecordedRequest, request_id_header


def pieces(text: str) -> list[str]:
    """`text` in the pieces a stream sends: each word with the whitespace after it."""
    return re.findall(r"\s*\S+\s*", text) or [text]


def _sse(data: Any, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n"


def chat_events(request_json: dict[str, Any], body: dict[str, Any]) -> Iterator[str]:
    choice = body["choices"][0]
    head = {k: body[k] for k in ("id", "created", "model", "system_fingerprint")}
    head["object"] = "chat.completion.chunk"

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
        return _sse(
            {
                **head,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
        )

    message = choice["message"]
    yield chunk({"role": "assistant", "content": "", "refusal": None})
    if message.get("refusal"):
        for piece in pieces(message["refusal"]):
            yield chunk({"refusal": piece})
    else:
        for piece in pieces(message["content"] or ""):
            yield chunk({"content": piece})
    yield chunk({}, choice["finish_reason"])
    if (request_json.get("stream_options") or {}).get("include_usage"):
        yield _sse({**head, "choices": [], "usage": body["usage"]})
    yield "data: [DONE]\n\n"


def responses_events(body: dict[str, Any]) -> Iterator[str]:
    sequence = iter(range(1_000_000))

    def event(kind: str, **fields: Any) -> str:
        return _sse({"type": kind, "sequence_number": next(sequence), **fields}, kind)

    started = {**copy.deepcopy(body), "status": "in_progress", "output": [], "usage": None}
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    for index, item in enumerate(body["output"]):
        yield event(
            "response.output_item.added",
            output_index=index,
            item={**item, "status": "in_progress", "content": []},
        )
        for part_index, part in enumerate(item["content"]):
            ids = {"item_id": item["id"], "output_index": index, "content_index": part_index}
            if part["type"] != "output_text":
                yield event("response.content_part.added", **ids, part=part)
                yield event("response.content_part.done", **ids, part=part)
                continue
            empty = {**part, "text": ""}
            yield event("response.content_part.added", **ids, part=empty)
            for piece in pieces(part["text"]):
                yield event("response.output_text.delta", **ids, delta=piece, logprobs=[])
            yield event("response.output_text.done", **ids, text=part["text"], logprobs=[])
            yield event("response.content_part.done", **ids, part=part)
        yield event("response.output_item.done", output_index=index, item=item)
    yield event("response.completed", response=body)


def messages_events(body: dict[str, Any]) -> Iterator[str]:
    usage = body["usage"]
    started = {
        **body,
        "content": [],
        "stop_reason": None,
        "usage": {**usage, "output_tokens": 1},
    }
    yield _sse({"type": "message_start", "message": started}, "message_start")
    for index, block in enumerate(body["content"]):
        if block["type"] == "tool_use":
            start = {**block, "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": piece}
                for piece in pieces(json.dumps(block["input"]))
            ]
        else:
            start = {**block, "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in pieces(block["text"])]
        yield _sse(
            {"type": "content_block_start", "index": index, "content_block": start},
            "content_block_start",
        )
        for delta in deltas:
            yield _sse(
                {"type": "content_block_delta", "index": index, "delta": delta},
                "content_block_delta",
            )
        yield _sse({"type": "content_block_stop", "index": index}, "content_block_stop")
    yield _sse(
        {
            "type": "message_delta",
            "delta": {"stop_reason": body["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": usage["output_tokens"]},
        },
        "message_delta",
    )
    yield _sse({"type": "message_stop"}, "message_stop")


def stream_events(api: Api, request_json: dict[str, Any], body: dict[str, Any]) -> Iterator[str]:
    """The SSE text of `body`, the answer to a streamed request of `api`."""
    if api == "chat":
        return chat_events(request_json, body)
    if api == "responses":
        return responses_events(body)
    return messages_events(body)


def answer_response(request: RecordedRequest, body: dict[str, Any]) -> Response:
    """`body` as the request asked for it: streamed as the API's events with `"stream":
    true`, else whole as JSON."""
    headers = request_id_header(request)
    if request.json.get("stream"):
        return StreamingResponse(
            stream_events(request.api, request.json, body),
            media_type="text/event-stream",
            headers=headers,
        )
    return JSONResponse(body, headers=headers)
