"""`llm` and `instructions` steps: what validation says of them, what they send and what they
give back. Pure, no Temporal."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from activities.llm.models import LlmText, TokenUsage
from activities.llm.structured import Reading, read_structured
from gateway.pipelines import pipeline_problems
from workflows.dag.graph import validate_pipeline
from workflows.dag.models import DagRunInput, StepConfig
from workflows.dag.steps import build_child_run, build_llm_call, child_usage, llm_result
from workflows.shared.failures import StepFailed

URL = "http://127.0.0.1:9000"
SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}


def fetch() -> dict[str, Any]:
    return {"step_name": "fetch", "usid": "u-fetch", "service_url": f"{URL}/items"}


def llm_step(name: str = "classify", **llm: Any) -> dict[str, Any]:
    return {
        "step_name": name,
        "usid": f"u-{name}",
        "type": "llm",
        "dependencies": ["fetch"],
        "outputs": [name],
        "llm": {
            "provider": "openai",
            "model": "gpt-test",
            "prompt": "Sort {{fetch_result}}",
            **llm,
        },
    }


def run(*steps: dict[str, Any]) -> DagRunInput:
    return DagRunInput.model_validate({"workflow_id": "wf", "STEPS_CONFIG": list(steps)})


def problems(*steps: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    return [(p.loc, p.msg) for p in pipeline_problems(run(*steps))]


def test_a_pipeline_of_every_type_is_valid_and_reads_json_downstream():
    assert (
        problems(
            fetch(),
            llm_step(output_schema=SCHEMA),
            {
                "step_name": "route",
                "usid": "u-route",
                "type": "instructions",
                "dependencies": ["classify"],
                "instructions": {
                    "context": "{{classify.json.label}}",
                    "instructions": [
                        "Explain {{classify_result.text}}",
                        {"type": "endpoint", "apiUrl": f"{URL}/x", "body": {"r": "{{result}}"}},
                    ],
                },
            },
            {
                "step_name": "report",
                "usid": "u-report",
                "dependencies": ["route"],
                "service_url": f"{URL}/report",
                "input_prep_config": {"body": {"label": "{{classify.json.label}}"}},
            },
        )
        == []
    )


def test_service_url_is_required_for_http_steps_only_and_blocks_belong_to_their_type():
    assert problems({"step_name": "a", "usid": "u-a"}) == [
        (("STEPS_CONFIG", 0, "service_url"), "step 'a': service_url is required for an http step")
    ]
    assert problems({"step_name": "b", "usid": "u-b", "type": "llm"}) == [
        (("STEPS_CONFIG", 0, "llm"), "step 'b': llm is required for an llm step")
    ]
    misplaced = problems(
        fetch(),
        {**llm_step(), "service_url": f"{URL}/x", "endpoint": "endpoint-1"},
        {**fetch(), "step_name": "f2", "usid": "u-f2", "llm": llm_step()["llm"]},
    )
    assert (
        ("STEPS_CONFIG", 1, "service_url"),
        "step 'classify': service_url is for http steps, and this is an llm step",
    ) in misplaced
    assert (
        ("STEPS_CONFIG", 1, "endpoint"),
        "step 'classify': endpoint is for http steps, and this is an llm step",
    ) in misplaced
    assert (
        ("STEPS_CONFIG", 2, "llm"),
        "step 'f2': llm is for llm steps, and this is an http step",
    ) in misplaced


def test_templates_of_new_steps_naming_nothing_are_problems():
    found = problems(fetch(), llm_step(prompt="Sort {{missing.text}}"))
    assert [loc for loc, _ in found] == [("STEPS_CONFIG", 1, "llm", "prompt")]
    assert "{{missing.text}} names no variable" in found[0][1]
    found = problems(
        fetch(),
        {
            "step_name": "route",
            "usid": "u-route",
            "type": "instructions",
            "instructions": {"context": "{{fetch_result}}", "instructions": ["Go"]},
        },
    )
    assert found == [
        (
            ("STEPS_CONFIG", 1, "instructions", "context"),
            "step 'route': {{fetch_result}} is produced by step 'fetch', which 'route' does not"
            " depend on; add 'fetch' to its dependencies",
        )
    ]


def test_secrets_are_never_sent_to_a_model_and_a_bad_schema_is_named():
    found = problems(fetch(), llm_step(system="key {{secrets.TOKEN}}"))
    assert found == [
        (
            ("STEPS_CONFIG", 1, "llm", "system"),
            "step 'classify': secrets are filled in HTTP calls only, never sent to a model",
        )
    ]
    found = problems(fetch(), llm_step(output_schema={"type": "objekt"}))
    assert found[0][0] == ("STEPS_CONFIG", 1, "llm", "output_schema")
    assert "output_schema is no JSON Schema" in found[0][1]


def test_an_instructions_body_is_checked_by_the_instruction_model():
    body = {"context": "x", "instructions": [{"type": "condition", "expresion": "a"}]}
    step = {"step_name": "r", "usid": "u-r", "type": "instructions", "instructions": body}
    assert validate_pipeline(run(step)) == []  # the DAG engine cannot know the child's model
    found = problems(step)
    assert found and all(loc[:3] == ("STEPS_CONFIG", 0, "instructions") for loc, _ in found)


def test_an_llm_step_takes_a_prompt_or_messages_not_both():
    with pytest.raises(ValidationError, match="exactly one of `prompt` and `messages`"):
        StepConfig.model_validate(
            llm_step(messages=[{"role": "user", "content": "hi"}], prompt="hi")
        )


def test_the_llm_call_and_the_result_later_steps_read():
    step = StepConfig.model_validate(
        llm_step(
            system="You sort {{input_data.kind}}.",
            prompt=None,
            messages=[{"role": "user", "content": "{{fetch_result.items}}"}],
            output_schema=SCHEMA,
            max_tokens=20,
        )
    )
    variables = {"fetch_result": {"items": ["a", "b"]}, "input_data": {"kind": "fruit"}}
    call = build_llm_call(step, variables, max_request_chars=1000)
    assert call.system == "You sort fruit."
    assert call.messages is not None and call.messages[0].content == '["a", "b"]'
    assert (call.output_schema, call.max_tokens, call.label) == (SCHEMA, 20, "step 'classify'")
    answer = LlmText(
        text='{"label": "a"}',
        json_value={"label": "a"},
        model="gpt-test-2",
        finish_reason="stop",
        usage=TokenUsage(input_tokens=3, output_tokens=2, total_tokens=5, cost_usd=0.25),
    )
    assert llm_result(call, answer) == {
        "text": '{"label": "a"}',
        "json": {"label": "a"},
        "provider": "openai",
        "model": "gpt-test-2",
        "usage": {"input_tokens": 3, "output_tokens": 2},
        "finish_reason": "stop",
        "requested_model": None,
        "fallback": [],
        "ladder": [],
        "cost_usd": 0.25,
        "rate_limit_wait_seconds": 0.0,
    }
    with pytest.raises(StepFailed, match="no variable named 'fetch_result'"):
        build_llm_call(step, {"input_data": {"kind": "x"}}, max_request_chars=1000)


def test_the_child_run_keeps_its_own_placeholders_and_gets_the_operator_options():
    step = StepConfig.model_validate(
        {
            "step_name": "r",
            "usid": "u-r",
            "type": "instructions",
            "timeout": 90,
            "instructions": {
                "context": "{{items}}",
                "instructions": ["Use {{result}} and {{context}} for {{kind}}"],
            },
        }
    )
    child = build_child_run(
        step,
        {"items": ["a"], "kind": "fruit"},
        max_request_chars=1000,
        engine={"step_budget": 7},
        execution_mode="fast",
    )
    assert child == {
        "context": '["a"]',
        "instructions": ["Use {{result}} and {{context}} for fruit"],
        "engine": {"step_budget": 7, "execution_mode": "fast", "run_timeout_seconds": 90},
    }
    assert child_usage({"usage": {"inputTokens": 4, "outputTokens": 1}}).model_dump() == {
        "input_tokens": 4,
        "output_tokens": 1,
        "cost_usd": None,
        "by_model": {},
        "unpriced_models": [],
    }


def test_the_answer_is_read_validated_and_repaired_when_it_is_not_json():
    assert read_structured('{"label": "x"}', None, SCHEMA) == Reading({"label": "x"}, [])
    assert read_structured("", {"label": "y"}, SCHEMA) == Reading({"label": "y"}, [])
    assert read_structured('{"name": "x"}', None, SCHEMA) == Reading(
        {"name": "x"}, ["'label' is a required property (at $)"]
    )
    fenced = read_structured('```json\n{"label": "x",}\n```', None, SCHEMA)
    assert fenced == Reading({"label": "x"}, [], repaired=True)
    assert read_structured("sure!", None, SCHEMA) == Reading(
        None, ["the answer is not JSON: 'sure!'"], repaired=True
    )


def test_an_llm_step_carries_its_fallback_chain_and_repair_attempts():
    def call_of(**llm: Any) -> Any:
        step = StepConfig.model_validate(llm_step(**llm))
        return build_llm_call(step, {"fetch_result": []}, max_request_chars=1000)

    chained = call_of(fallback=[{"provider": "anthropic", "model": "c"}], repair_attempts=0)
    assert [ref.model_dump() for ref in chained.fallback] == [
        {"provider": "anthropic", "model": "c"}
    ]
    assert chained.repair_attempts == 0
    assert call_of(fallback=False).fallback is False
    defaults = call_of()
    assert (defaults.fallback, defaults.repair_attempts) == (None, 2)
    with pytest.raises(ValidationError, match="modle"):
        call_of(fallback=[{"provider": "openai", "model": "m", "modle": "x"}])
    with pytest.raises(ValidationError, match="repair_attempts"):
        call_of(repair_attempts=-1)
