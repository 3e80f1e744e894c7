"""The structured-output ladder and fallback models of DAG `llm` steps, through `POST
/execute`: the real gateway, dev server and workers, the real SDKs against the fake LLM
server. What a user reads on the step: the rungs taken, the model asked and the one that
answered, and why it moved."""

from __future__ import annotations

from typing import Any

from tests.conftest import Gateway, unique
from tests.fakes.llm_server import FakeLLMServer

LABEL_SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["fruit", "vegetable"]}},
    "required": ["label"],
}
SENTENCE_SCHEMA = {
    "type": "object",
    "properties": {"sentence": {"type": "string"}},
    "required": ["sentence"],
}


def pipeline(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "workflow_id": unique("llm-ladder"),
        "original_input": {"items": ["apple", "pear"]},
        "STEPS_CONFIG": steps,
        "PIPELINE_SETTINGS": {
            "error_handling": {"max_retries": 1, "retry_delay": 0.1},
            "timeouts": {"step_timeout": 20},
        },
    }


def llm_step(name: str, dependencies: list[str], **llm: Any) -> dict[str, Any]:
    return {
        "step_name": name,
        "usid": f"u-{name}",
        "type": "llm",
        "dependencies": dependencies,
        "llm": llm,
    }


async def test_a_repaired_answer_and_a_fallback_model_show_on_the_steps(
    llm_gateway: Gateway, fake_llm: FakeLLMServer
) -> None:
    fake_llm.when("Classify").reply('```json\n{"label": "fruit",}\n```', usage=(7, 3))
    fake_llm.when(model="claude-primary").fail(529)
    fake_llm.when("Describe", model="gpt-backup").reply_json({"words": 3}, times=1, usage=(5, 2))
    fake_llm.when("Describe", model="gpt-backup").reply_json(
        {"sentence": "Sweet fruit."}, usage=(9, 4)
    )
    body = pipeline(
        [
            llm_step(
                "classify",
                [],
                provider="openai",
                model="gpt-test",
                prompt="Classify {{original_input.items}}",
                output_schema=LABEL_SCHEMA,
            ),
            llm_step(
                "describe",
                ["classify"],
                provider="anthropic",
                model="claude-primary",
                prompt="Describe the {{classify_result.json.label}}",
                output_schema=SENTENCE_SCHEMA,
                fallback=[{"provider": "openai", "model": "gpt-backup"}],
                repair_attempts=1,
            ),
        ]
    )

    response = await llm_gateway.http.post("/execute", json=body)

    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "completed", run["error"]
    classify = run["steps"]["classify"]
    assert classify["ladder"] == ["native", "repaired"]
    assert classify["result"]["json"] == {"label": "fruit"}
    assert classify["result"]["ladder"] == ["native", "repaired"]
    assert (classify["requested_model"], classify["model"], classify["fallback"]) == (
        "gpt-test",
        "gpt-test",
        [],
    )

    describe = run["steps"]["describe"]
    assert (describe["provider"], describe["model"]) == ("openai", "gpt-backup")
    assert describe["requested_model"] == "claude-primary"
    moved = [{"provider": "anthropic", "model": "claude-primary", "reason": "529 overloaded"}]
    assert describe["fallback"] == moved
    assert describe["ladder"] == ["native", "reprompt:1"]
    assert describe["result"]["json"] == {"sentence": "Sweet fruit."}
    assert describe["result"]["provider"] == "openai"
    assert describe["result"]["fallback"] == moved
    # The correction's tokens count with the first answer's.
    assert (describe["usage"]["input_tokens"], describe["usage"]["output_tokens"]) == (5 + 9, 2 + 4)
    correction = fake_llm.requests_for(contains="Describe")[-1]
    assert correction.model == "gpt-backup"
    assert "'sentence' is a required property" in correction.last_user_message

    # The state read later says the same.
    again = (await llm_gateway.http.get(f"/runs/{body['workflow_id']}")).json()
    assert again["steps"]["describe"]["fallback"] == moved
    assert again["steps"]["classify"]["ladder"] == ["native", "repaired"]


async def test_fallback_false_fails_the_step_with_the_provider_s_error(
    llm_gateway: Gateway, fake_llm: FakeLLMServer
) -> None:
    fake_llm.when(model="claude-primary").fail(529)
    body = pipeline(
        [
            llm_step(
                "describe",
                [],
                provider="anthropic",
                model="claude-primary",
                prompt="Describe an apple",
                fallback=False,
            )
        ]
    )

    run = (await llm_gateway.http.post("/execute", json=body)).json()

    assert run["status"] == "failed"
    assert run["steps"]["describe"]["error"]["type"] == "LlmProviderError"
    assert {request.model for request in fake_llm.requests} == {"claude-primary"}


async def test_a_fallback_entry_with_an_unknown_key_is_a_422(llm_gateway: Gateway) -> None:
    body = pipeline(
        [
            llm_step(
                "describe",
                [],
                provider="anthropic",
                model="claude-primary",
                prompt="Describe an apple",
                fallback=[{"provider": "openai", "model": "gpt-backup", "modle": "x"}],
            )
        ]
    )

    response = await llm_gateway.http.post("/execute", json=body)

    assert response.status_code == 422
    assert "modle" in response.text
