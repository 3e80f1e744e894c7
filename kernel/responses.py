"""The "main value" of a step's response: what each name in the step's `outputs` receives.

An OpenAI chat completion gives `choices[0].message.content`, an OpenAI Responses object its
output text, an Anthropic message its text blocks joined; anything else is the whole body.

Every shape is checked before it is read: the body is whatever a user's service sent, and an
exception here, in workflow code, would fail the workflow task, which Temporal retries forever.

Pure and I/O-free: the DAG workflow reads a step's outputs with it, and the HTTP activity
computes the same values when it writes a step's outputs to Redis itself.
"""

from __future__ import annotations

from typing import Any


def _openai_chat(body: dict[str, Any]) -> str | None:
    choices = body.get("choices")
    if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
        return None
    message = choices[0].get("message")
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    return content if isinstance(content, str) else None


def _list_of_dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _openai_responses(body: dict[str, Any]) -> str | None:
    if body.get("object") != "response":
        return None
    if isinstance(body.get("output_text"), str):
        return str(body["output_text"])
    return "".join(
        part["text"]
        for item in _list_of_dicts(body.get("output"))
        if item.get("type") == "message"
        for part in _list_of_dicts(item.get("content"))
        if part.get("type") == "output_text" and isinstance(part.get("text"), str)
    )


def _anthropic_message(body: dict[str, Any]) -> str | None:
    if body.get("type") != "message" or not isinstance(body.get("content"), list):
        return None
    return "".join(
        block["text"]
        for block in _list_of_dicts(body["content"])
        if block.get("type") == "text" and isinstance(block.get("text"), str)
    )


def main_value(body: Any) -> Any:
    """The value a step's outputs receive from its parsed response body."""
    if isinstance(body, dict):
        for extract in (_openai_chat, _openai_responses, _anthropic_message):
            value = extract(body)
            if value is not None:
                return value
    return body
