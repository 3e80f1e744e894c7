"""The structured-output ladder of `call_llm` (native → repaired → reprompt:N →
InvalidModelOutput), through the real OpenAI and Anthropic SDKs against the fake LLM server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig

from activities.llm.activities import LlmActivities, build_llm_clients
from activities.llm.models import LlmCall, LlmMessage
from kernel.metrics import LLM_LADDER_RUNGS
from tests.conftest import activity_env
from tests.fakes.llm_server import FakeLLMServer, RecordedRequest

Flavour = Literal["chat", "responses", "anthropic"]
FLAVOURS: list[Flavour] = ["chat", "responses", "anthropic"]

LABEL_SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["fruit", "vegetable"]},
        "sweet": {"type": "boolean"},
    },
    "required": ["label"],
}


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeLLMServer) -> FakeLLMServer:
    fake_server.reset()
    return fake_server


def activities_for(fake: FakeLLMServer, flavour: Flavour) -> LlmActivities:
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
    )


def classify(flavour: Flavour, **fields: Any) -> LlmCall:
    return LlmCall(
        provider="anthropic" if flavour == "anthropic" else "openai",
        model="m-1",
        prompt="apple?",
        output_schema=LABEL_SCHEMA,
        label="step 'classify'",
        **fields,
    )


async def ask(fake: FakeLLMServer, flavour: Flavour, call: LlmCall) -> Any:
    return await activity_env().run(activities_for(fake, flavour).call_llm, call)


async def ask_failing(fake: FakeLLMServer, flavour: Flavour, call: LlmCall) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await ask(fake, flavour, call)
    return caught.value


def assistant_turns(request: RecordedRequest) -> list[str]:
    """What the request says the model answered before, whatever the API."""
    turns = request.json.get("messages") or request.json.get("input") or []
    if isinstance(turns, str):  # the Responses API's one user message
        return []
    return [turn["content"] for turn in turns if turn.get("role") == "assistant"]


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_a_valid_native_answer_takes_one_rung(fake: FakeLLMServer, flavour: Flavour) -> None:
    fake.reply_json({"label": "fruit"})

    result = await ask(fake, flavour, classify(flavour))

    assert result.json_value == {"label": "fruit"}
    assert result.ladder == ["native"]
    assert len(fake.requests) == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_a_fenced_answer_with_a_trailing_comma_is_repaired_without_asking_again(
    fake: FakeLLMServer, flavour: Flavour
) -> None:
    fake.reply('```json\n{"label": "fruit", "sweet": true,}\n```')

    result = await ask(fake, flavour, classify(flavour))

    assert result.json_value == {"label": "fruit", "sweet": True}
    assert result.ladder == ["native", "repaired"]
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "answer",
    ["{'label': 'fruit'}", '{"label": "fruit", "sweet": true', 'Sure: {"label": "fruit"}'],
    ids=["single-quotes", "truncated", "prose-around"],
)
async def test_other_malformed_json_is_repaired(fake: FakeLLMServer, answer: str) -> None:
    fake.reply(answer)

    result = await ask(fake, "chat", classify("chat"))

    assert result.json_value["label"] == "fruit"
    assert result.ladder == ["native", "repaired"]


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_a_missing_field_is_asked_again_quoting_the_error_and_then_validates(
    fake: FakeLLMServer, flavour: Flavour
) -> None:
    fake.reply_json({"sweet": True}, usage=(6, 2))
    fake.reply_json({"label": "fruit", "sweet": True}, usage=(20, 5))

    result = await ask(fake, flavour, classify(flavour))

    assert result.json_value == {"label": "fruit", "sweet": True}
    assert result.ladder == ["native", "reprompt:1"]
    # The re-prompt's tokens are the step's too.
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.total_tokens) == (
        26,
        7,
        33,
    )
    first, again = fake.requests
    assert again.json_schema == LABEL_SCHEMA
    assert assistant_turns(again) == [json.dumps({"sweet": True})]
    assert again.user_messages[0] == "apple?"
    assert "'label' is a required property (at $)" in again.last_user_message
    assert assistant_turns(first) == []


async def test_a_conversation_is_kept_when_asking_again(fake: FakeLLMServer) -> None:
    fake.reply_json({"label": "mineral"})
    call = classify(
        "chat",
        messages=[
            LlmMessage(role="user", content="apple?"),
            LlmMessage(role="assistant", content="Which list?"),
            LlmMessage(role="user", content="The shopping list."),
        ],
    )

    result = await ask(fake, "chat", call)

    assert result.ladder == ["native", "reprompt:1"]
    again = fake.requests[1]
    assert again.user_messages[:2] == ["apple?", "The shopping list."]
    assert assistant_turns(again) == ["Which list?", json.dumps({"label": "mineral"})]
    assert "'mineral' is not one of ['fruit', 'vegetable'] (at $.label)" in again.last_user_message


async def test_a_repaired_answer_that_still_breaks_the_schema_is_asked_again(
    fake: FakeLLMServer,
) -> None:
    fake.reply('```json\n{"sweet": true,}\n```')

    result = await ask(fake, "chat", classify("chat"))

    assert result.ladder == ["native", "repaired", "reprompt:1"]
    assert result.json_value["label"] == "fruit"


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("attempts", [0, 1, 2])
async def test_a_model_that_never_complies_is_invalid_model_output_after_the_set_attempts(
    fake: FakeLLMServer, flavour: Flavour, attempts: int
) -> None:
    fake.when().reply_json({"label": "mineral"})

    error = await ask_failing(fake, flavour, classify(flavour, repair_attempts=attempts))

    assert error.type == "InvalidModelOutput"
    assert error.non_retryable
    assert error.message.startswith("step 'classify': ")
    assert "'mineral' is not one of ['fruit', 'vegetable'] (at $.label)" in error.message
    ladder = ["native", *(f"reprompt:{n}" for n in range(1, attempts + 1))]
    assert error.details[0]["ladder"] == ladder
    assert len(fake.requests) == 1 + attempts


async def test_text_with_no_json_in_it_is_said_to_be_no_json(fake: FakeLLMServer) -> None:
    fake.when().reply("I would rather not say.")

    error = await ask_failing(fake, "chat", classify("chat", repair_attempts=1))

    assert error.details[0]["ladder"] == ["native", "repaired", "reprompt:1", "repaired"]
    assert "the answer is not JSON: 'I would rather not say.'" in error.message
    assert "the answer is not JSON" in fake.requests[1].last_user_message


async def test_without_an_output_schema_there_is_no_ladder(fake: FakeLLMServer) -> None:
    fake.reply("{not json")

    result = await ask(fake, "chat", classify("chat").model_copy(update={"output_schema": None}))

    assert (result.text, result.ladder, result.json_value) == ("{not json", [], None)


async def test_rungs_are_counted_by_rung_and_outcome(fake: FakeLLMServer) -> None:
    buffer = MetricBuffer(1000)
    env = activity_env()
    env.metric_meter = Runtime(telemetry=TelemetryConfig(metrics=buffer)).metric_meter
    fake.reply('{"sweet": true,}')

    await env.run(activities_for(fake, "chat").call_llm, classify("chat"))

    counted: dict[tuple[str, str], int] = {}
    for update in buffer.retrieve_updates():
        if update.metric.name == LLM_LADDER_RUNGS:
            labels = dict(update.attributes)
            key = (labels["rung"], labels["outcome"])
            counted[key] = counted.get(key, 0) + update.value
    assert counted == {
        ("native", "invalid"): 1,
        ("repaired", "invalid"): 1,
        ("reprompt", "valid"): 1,
    }
