"""Streamed LLM answers: the real SDKs read the fake's streams, and every chunk lands in the
run's live Redis stream, in order, adding up to the answer the activity returns."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from redis.asyncio import Redis

from activities.llm.activities import LlmActivities, build_llm_clients
from activities.llm.models import LlmCall
from gateway.live import LiveEvents
from kernel.live import STEP_DELTA
from tests.conftest import activity_env, unique
from tests.fakes.llm_server import FakeLLMServer

Flavour = Literal["chat", "responses", "anthropic"]
LONG_ANSWER = " ".join(f"word{i}" for i in range(40))


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeLLMServer) -> Iterator[FakeLLMServer]:
    fake_server.reset()
    yield fake_server


def activities(fake: FakeLLMServer, flavour: Flavour, redis: Redis) -> LlmActivities:
    openai_client, anthropic_client = build_llm_clients(
        openai_api_key="sk-test",
        openai_base_url=fake.base_url_openai,
        anthropic_api_key="sk-ant-test",
        anthropic_base_url=fake.base_url_anthropic,
    )
    return LlmActivities(
        openai=openai_client,
        anthropic=anthropic_client,
        openai_api="responses" if flavour == "responses" else "chat",
        redis=redis,
    )


async def stream_call(
    fake: FakeLLMServer, flavour: Flavour, redis: Redis, call: LlmCall
) -> tuple[Any, list[dict[str, Any]]]:
    workflow_id = unique("streamed")
    env = activity_env(workflow_id=workflow_id)
    answer = await env.run(activities(fake, flavour, redis).call_llm, call)
    events = [event for _, event in await LiveEvents(redis, workflow_id).after("0")]
    return answer, events


@pytest.mark.parametrize("flavour", ["chat", "responses", "anthropic"])
async def test_chunks_arrive_in_order_and_add_up_to_the_answer(
    fake: FakeLLMServer, redis: Redis, flavour: Flavour
) -> None:
    fake.reply(LONG_ANSWER)
    call = LlmCall(
        provider="anthropic" if flavour == "anthropic" else "openai",
        model="m-stream",
        prompt="write",
        stream=True,
        step_name="write",
    )
    answer, events = await stream_call(fake, flavour, redis, call)
    deltas = [event for event in events if event["event"] == STEP_DELTA]
    assert len(deltas) == 40
    assert [delta["index"] for delta in deltas] == list(range(40))
    assert "".join(delta["delta"] for delta in deltas) == answer.text == LONG_ANSWER
    assert {(delta["step_name"], delta["attempt"]) for delta in deltas} == {("write", 1)}
    assert fake.last_request.json["stream"] is True
    assert answer.usage.output_tokens == 40


async def test_chat_streams_ask_for_the_usage_chunk(fake: FakeLLMServer, redis: Redis) -> None:
    fake.reply("two words", usage=(9, 2))
    call = LlmCall(provider="openai", model="m", prompt="p", stream=True, step_name="s")
    answer, _ = await stream_call(fake, "chat", redis, call)
    assert fake.last_request.json["stream_options"] == {"include_usage": True}
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (9, 2)


@pytest.mark.parametrize("flavour", ["chat", "anthropic"])
async def test_structured_output_streams_its_text_and_is_validated_at_the_end(
    fake: FakeLLMServer, redis: Redis, flavour: Flavour
) -> None:
    value = {"label": "fruit", "why": "apples grow on trees"}
    fake.reply_json(value)
    schema = {
        "type": "object",
        "properties": {"label": {"enum": ["fruit", "vegetable"]}, "why": {"type": "string"}},
        "required": ["label", "why"],
    }
    call = LlmCall(
        provider="anthropic" if flavour == "anthropic" else "openai",
        model="m",
        prompt="classify",
        output_schema=schema,
        stream=True,
        step_name="classify",
    )
    answer, events = await stream_call(fake, flavour, redis, call)
    streamed = "".join(event["delta"] for event in events if event["event"] == STEP_DELTA)
    assert len(events) > 1
    assert json.loads(streamed) == answer.json_value == value


async def test_an_unstreamed_call_writes_no_chunks(fake: FakeLLMServer, redis: Redis) -> None:
    fake.reply("plain")
    call = LlmCall(provider="openai", model="m", prompt="p", step_name="s")
    answer, events = await stream_call(fake, "chat", redis, call)
    assert answer.text == "plain"
    assert events == []
    assert not fake.last_request.json.get("stream")
