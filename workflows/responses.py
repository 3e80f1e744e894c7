"""The "main value" of a step's response: what each name in the step's `outputs` receives.

An OpenAI chat completion gives `choices[0].message.content`, an OpenAI Responses object its
output text, an Anthropic message its text blocks joined; anything else is the whole body.
"""

from __future__ import annotations

from typing import Any


def _openai_chat(body: dict[str, Any]) -> str | None:
    choices = body.get("choices")
    if body.get("object") != "chat.completion" and not (
        isinstance(choices, list)
        and choices
        and isinstance(choices[0], dict)
        and isinstance(choices[0].get("message"), dict)
    ):
        return None
    if not isinstance(choices, list) or not choices:
        return None
    message = choices[0].get("message") or {}
    content = message.get("content")
    return content if isinstance(content, str) else None


def _openai_responses(body: dict[str, Any]) -> str | None:
    if body.get("object") != "response":
        return None
    if isinstance(body.get("output_text"), str):
        return str(body["output_text"])
    texts = [
        part.get("text", "")
        for item in body.get("output") or []
        if isinstance(item, dict) and item.get("type") == "message"
        for part in item.get("content") or []
        if isinstance(part, dict) and part.get("type") == "output_text"
    ]
    return "".join(texts)


def _anthropic_message(body: dict[str, Any]) -> str | None:
    if body.get("type") != "message" or not isinstance(body.get("content"), list):
        return None
    return "".join(
        block.get("text", "")
        for block in body["content"]
        if isinstance(block, dict) and block.get("type") == "text"
    )


def main_value(body: Any) -> Any:
    """The value a step's outputs receive from its parsed response body."""
    if isinstance(body, dict):
        for extract in (_openai_chat, _openai_responses, _anthropic_message):
            value = extract(body)
            if value is not None:
                return value
    return body
