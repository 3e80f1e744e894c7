"""The main value a step's `outputs` receive from its parsed response body."""

from __future__ import annotations

from typing import Any

import pytest

from kernel.responses import main_value

OPENAI_CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Bees dance to share directions."},
            "finish_reason": "stop",
        },
        {"index": 1, "message": {"role": "assistant", "content": "second choice"}},
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11},
}

OPENAI_RESPONSE_ITEMS = {
    "id": "resp_1",
    "object": "response",
    "status": "completed",
    "model": "gpt-4.1-mini",
    "output": [
        {"id": "rs_1", "type": "reasoning", "summary": []},
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Hello, ", "annotations": []},
                {"type": "refusal", "refusal": "not this part"},
                {"type": "output_text", "text": "world.", "annotations": []},
            ],
        },
        {"type": "function_call", "name": "lookup", "arguments": "{}"},
    ],
}

ANTHROPIC_MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5",
    "content": [
        {"type": "text", "text": "Let me check. "},
        {"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"q": "bees"}},
        {"type": "text", "text": "Bees dance."},
    ],
    "stop_reason": "tool_use",
    "usage": {"input_tokens": 10, "output_tokens": 20},
}


class TestOpenAIChat:
    def test_first_choice_message_content(self) -> None:
        assert main_value(OPENAI_CHAT) == "Bees dance to share directions."

    def test_chat_shape_without_object_field(self) -> None:
        body = {"choices": [{"message": {"role": "assistant", "content": "proxy answer"}}]}
        assert main_value(body) == "proxy answer"

    def test_tool_call_without_content_keeps_the_whole_body(self) -> None:
        body = {
            "object": "chat.completion",
            "choices": [{"message": {"role": "assistant", "content": None, "tool_calls": []}}],
        }
        assert main_value(body) == body

    def test_content_is_returned_even_when_it_is_json_text(self) -> None:
        body = {"object": "chat.completion", "choices": [{"message": {"content": '{"a": 1}'}}]}
        assert main_value(body) == '{"a": 1}'


class TestOpenAIResponses:
    def test_output_text_field_wins(self) -> None:
        body = {**OPENAI_RESPONSE_ITEMS, "output_text": "from the convenience field"}
        assert main_value(body) == "from the convenience field"

    def test_output_text_parts_of_message_items_are_joined(self) -> None:
        assert main_value(OPENAI_RESPONSE_ITEMS) == "Hello, world."

    def test_several_message_items(self) -> None:
        body = {
            "object": "response",
            "output": [
                {"type": "message", "content": [{"type": "output_text", "text": "a"}]},
                {"type": "message", "content": [{"type": "output_text", "text": "b"}]},
            ],
        }
        assert main_value(body) == "ab"

    def test_response_without_text_gives_empty_text(self) -> None:
        body = {"object": "response", "output": [{"type": "reasoning", "summary": []}]}
        assert main_value(body) == ""


class TestAnthropic:
    def test_text_blocks_are_joined_and_tool_use_is_skipped(self) -> None:
        assert main_value(ANTHROPIC_MESSAGE) == "Let me check. Bees dance."

    def test_message_with_only_tool_use_gives_empty_text(self) -> None:
        body = {**ANTHROPIC_MESSAGE, "content": [ANTHROPIC_MESSAGE["content"][1]]}
        assert main_value(body) == ""

    def test_type_message_with_string_content_is_not_anthropic(self) -> None:
        body = {"type": "message", "content": "just a field"}
        assert main_value(body) == body


class TestEverythingElse:
    @pytest.mark.parametrize(
        "body",
        [
            {"status": "ok", "items": [1, 2]},
            {"object": "list", "data": []},
            [{"a": 1}, {"b": 2}],
            "plain text answer",
            "",
            42,
            3.5,
            True,
            None,
        ],
    )
    def test_generic_json_and_text_are_unchanged(self, body: Any) -> None:
        assert main_value(body) == body

    @pytest.mark.parametrize(
        "body",
        [
            {"choices": ["red", "green"]},
            {"choices": []},
            {"choices": [{"text": "legacy completion"}]},
            {"choices": [{"message": "not an object"}]},
            {"choices": "a, b", "question": "pick one"},
        ],
    )
    def test_a_choices_key_alone_is_not_a_chat_completion(self, body: dict[str, Any]) -> None:
        assert main_value(body) == body

    def test_the_body_is_returned_as_is_not_copied(self) -> None:
        body = {"result": {"nested": True}}
        assert main_value(body) is body

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ({"object": "chat.completion", "choices": [1]}, None),
            ({"object": "chat.completion", "choices": [{"message": "text"}]}, None),
            ({"object": "response", "output": 5}, ""),
            ({"object": "response", "output": [{"type": "message", "content": 7}]}, ""),
            ({"type": "message", "content": [{"type": "text", "text": 3}, "x"]}, ""),
        ],
    )
    def test_malformed_provider_shapes_do_not_raise(
        self, body: dict[str, Any], expected: str | None
    ) -> None:
        # Raised inside the workflow, an exception would fail its task again and again.
        assert main_value(body) == (body if expected is None else expected)
