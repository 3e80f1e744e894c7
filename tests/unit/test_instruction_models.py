"""The instruction-run payload: each instruction kind, the legacy body and every error."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_core import to_json

from workflows.instructions.models import (
    ConditionInstruction,
    EndpointInstruction,
    InstructionRunInput,
    InstructionRunStatus,
    LlmInstruction,
    RouterInstruction,
    StepState,
    ThreadInstruction,
    TokenUsage,
    condition_of,
    error_details,
)

ENDPOINT = {"type": "endpoint", "apiUrl": "https://api.example.com/data"}
ROUTER = {
    "type": "router",
    "description": "Select data source",
    "evaluationPrompt": "Which API should be called?",
    "options": [
        {
            "id": "weather",
            "name": "Weather API",
            "description": "Weather forecasts",
            "endpoint": {"apiUrl": "https://weather.example.com"},
        },
        {"id": "news", "name": "News API", "endpoint": {"apiUrl": "https://news.example.com"}},
    ],
    "defaultOption": "weather",
}


def run(*instructions: Any, **extra: Any) -> InstructionRunInput:
    return InstructionRunInput.model_validate(
        {"context": "ctx", "instructions": list(instructions), **extra}
    )


def messages(error: ValidationError) -> list[str]:
    return [item["msg"] for item in error_details(error.errors(include_url=False))]


def errors_of(*instructions: Any, **extra: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        run(*instructions, **extra)
    return messages(caught.value)


class TestKinds:
    def test_plain_string_is_an_llm_instruction(self) -> None:
        step = run("Summarize this text").instructions[0]
        assert isinstance(step, LlmInstruction)
        assert step.instruction == "Summarize this text"
        assert step.condition is None

    def test_llm_instruction_with_seed_condition(self) -> None:
        step = run(
            "a",
            {
                "instruction": "Check if result contains 'error'",
                "condition": {
                    "evaluateAfterStep": 1,
                    "expression": "result contains 'error'",
                    "ifTrue": [1],
                    "ifFalse": [2],
                },
            },
            "c",
        ).instructions[1]
        assert isinstance(step, LlmInstruction)
        assert step.condition is not None
        assert step.condition.evaluate_after_step == 1
        assert step.condition.if_true == [1]
        assert step.condition.if_false == [2]
        assert step.condition.mode == "deterministic"

    def test_condition_step_with_or_without_type(self) -> None:
        with_type = run({"type": "condition", "expression": "x", "ifTrue": [0]}).instructions[0]
        without = run({"expression": "x", "ifTrue": [0], "ifFalse": []}).instructions[0]
        assert isinstance(with_type, ConditionInstruction)
        assert isinstance(without, ConditionInstruction)
        assert without.mode == "llm"

    def test_condition_mode_is_decided_once_and_carried_in_the_input(self) -> None:
        step = run({"expression": "result is empty", "ifTrue": [0]}).instructions[0]
        carried = InstructionRunInput.model_validate_json(
            run({"expression": "result is empty", "ifTrue": [0]}).model_dump_json()
        ).instructions[0]
        assert isinstance(step, ConditionInstruction)
        assert isinstance(carried, ConditionInstruction)
        assert step.mode == carried.mode == "deterministic"
        assert '"mode":"deterministic"' in run({"expression": "length > 3"}).model_dump_json()

    def test_condition_mode_can_be_forced(self) -> None:
        step = run({"expression": "result is empty", "mode": "llm"}).instructions[0]
        assert isinstance(step, ConditionInstruction)
        assert step.mode == "llm"

    def test_endpoint_defaults_match_the_seed(self) -> None:
        step = run(ENDPOINT).instructions[0]
        assert isinstance(step, EndpointInstruction)
        assert (step.method, step.retries, step.retry_delay, step.timeout) == (
            "GET",
            3,
            1000,
            30000,
        )
        assert step.headers == {}
        assert step.body is None
        assert step.endpoint_url is None

    def test_endpoint_with_everything(self) -> None:
        step = run(
            {
                **ENDPOINT,
                "endpointUrl": "https://endpoint-1.workers.dev",
                "method": "post",
                "headers": {"X-Token": "{{context}}"},
                "body": {"text": "{{result}}", "n": [1, 2]},
                "retries": 5,
                "retryDelay": 250,
                "timeout": 5000,
                "condition": {"expression": "result.ok == 'true'", "ifTrue": [0]},
            }
        ).instructions[0]
        assert isinstance(step, EndpointInstruction)
        assert step.method == "POST"
        assert step.endpoint_url == "https://endpoint-1.workers.dev"
        assert step.body == {"text": "{{result}}", "n": [1, 2]}
        assert condition_of(step) is step.condition

    def test_thread_defaults(self) -> None:
        step = run("a", {"type": "thread", "collectFromSteps": [0]}).instructions[1]
        assert isinstance(step, ThreadInstruction)
        assert step.output_format == "markdown"
        assert step.completion_check is None

    def test_thread_completion_check(self) -> None:
        step = run(
            "a",
            {
                "type": "thread",
                "collectFromSteps": [0],
                "outputFormat": "json",
                "completionCheck": {"expression": "result[0].status == 'ran'"},
            },
        ).instructions[1]
        assert isinstance(step, ThreadInstruction)
        assert step.completion_check is not None
        assert step.completion_check.mode == "deterministic"

    def test_router(self) -> None:
        step = run(ROUTER).instructions[0]
        assert isinstance(step, RouterInstruction)
        assert [o.id for o in step.options] == ["weather", "news"]
        assert step.options[0].endpoint.api_url == "https://weather.example.com"
        assert step.fallback_option.id == "weather"
        assert step.option("news") is step.options[1]
        assert step.option("nope") is None

    def test_router_without_default_falls_back_to_first_option(self) -> None:
        step = run({**ROUTER, "defaultOption": None}).instructions[0]
        assert isinstance(step, RouterInstruction)
        assert step.fallback_option.id == "weather"

    def test_python_names_are_accepted_too(self) -> None:
        step = run("a", {"type": "thread", "collect_from_steps": [0], "output_format": "json"})
        thread = step.instructions[1]
        assert isinstance(thread, ThreadInstruction)
        assert thread.output_format == "json"


class TestRunInput:
    def test_default_models(self) -> None:
        assert run("a").effective_model == "gpt-5-nano"
        assert run("a", provider="anthropic").effective_model == "claude-haiku-4-5"
        assert run("a", provider="anthropic", model="claude-x").effective_model == "claude-x"
        assert run("a", model="  ").effective_model == "gpt-5-nano"

    def test_unknown_provider(self) -> None:
        assert errors_of("a", provider="mistral")[0].startswith("provider:")

    def test_legacy_format_is_two_llm_instructions(self) -> None:
        parsed = InstructionRunInput.model_validate(
            {
                "context": "text",
                "firstInstruction": "Summarize",
                "secondInstruction": "Translate",
                "provider": "anthropic",
            }
        )
        assert [i.instruction for i in parsed.instructions if isinstance(i, LlmInstruction)] == [
            "Summarize",
            "Translate",
        ]
        assert parsed.provider == "anthropic"
        assert parsed.effective_model == "claude-haiku-4-5"

    def test_legacy_and_new_format_together_is_an_error(self) -> None:
        with pytest.raises(ValidationError) as caught:
            InstructionRunInput.model_validate(
                {"context": "c", "instructions": ["a"], "firstInstruction": "b"}
            )
        assert "not both" in messages(caught.value)[0]

    def test_legacy_instruction_must_be_a_string(self) -> None:
        with pytest.raises(ValidationError) as caught:
            InstructionRunInput.model_validate(
                {"context": "c", "firstInstruction": {"x": 1}, "secondInstruction": "b"}
            )
        assert messages(caught.value) == ["firstInstruction: must be a string"]

    def test_round_trips_through_json_as_temporal_does(self) -> None:
        original = run(
            "a",
            {"instruction": "b", "condition": {"expression": "result is empty", "ifTrue": [2]}},
            "c",
            {**ENDPOINT, "body": {"q": "{{result}}"}},
            {"expression": "length > 3", "ifFalse": [5]},
            "f",
            {"type": "thread", "collectFromSteps": [0, 1]},
            ROUTER,
            provider="anthropic",
        )
        wire = to_json(original)
        assert b'"ifTrue"' in wire and b'"apiUrl"' in wire
        assert InstructionRunInput.model_validate_json(wire) == original
        assert InstructionRunInput.model_validate(original.model_dump(mode="json")) == original
        assert InstructionRunInput.model_validate(original.model_dump(by_alias=False)) == original


class TestErrors:
    def test_empty_instructions(self) -> None:
        assert errors_of() == ["instructions: at least one instruction is required"]

    def test_unknown_type_names_index(self) -> None:
        assert errors_of("a", {"type": "webhook"}) == [
            "instructions[1]: unknown instruction type 'webhook' "
            "(expected llm, condition, endpoint, thread, router or approval)"
        ]

    def test_object_without_type_or_hint(self) -> None:
        assert errors_of({"apiUrl": "https://x.io"})[0].startswith(
            "instructions[0]: instruction type missing"
        )

    def test_non_object_instruction(self) -> None:
        assert errors_of("a", 5) == ["instructions[1]: expected a string or an object, got int"]

    def test_if_true_out_of_range(self) -> None:
        assert errors_of("a", "b", {"expression": "x", "ifTrue": [7], "ifFalse": [0]}) == [
            "instructions[2].ifTrue[0]: step 7 is out of range (3 instructions)"
        ]

    def test_nested_condition_indices_out_of_range(self) -> None:
        nested = {
            "instruction": "b",
            "condition": {
                "expression": "x",
                "ifTrue": [0],
                "ifFalse": [-1],
                "evaluateAfterStep": 4,
            },
        }
        assert errors_of("a", nested) == [
            "instructions[1].condition.evaluateAfterStep: step 4 is out of range (2 instructions)",
            "instructions[1].condition.ifFalse[0]: step -1 is out of range (2 instructions)",
        ]

    def test_endpoint_condition_out_of_range(self) -> None:
        step = {**ENDPOINT, "condition": {"expression": "x", "ifTrue": [1]}}
        assert errors_of(step) == [
            "instructions[0].condition.ifTrue[0]: step 1 is out of range (1 instruction)"
        ]

    def test_collect_from_steps_out_of_range_and_self(self) -> None:
        assert errors_of("a", {"type": "thread", "collectFromSteps": [0, 9, 1]}) == [
            "instructions[1].collectFromSteps[1]: step 9 is out of range (2 instructions)",
            "instructions[1].collectFromSteps[2]: a thread cannot collect its own result",
        ]

    def test_thread_needs_steps(self) -> None:
        assert errors_of({"type": "thread", "collectFromSteps": []})[0].startswith(
            "instructions[0].collectFromSteps:"
        )

    def test_router_without_options(self) -> None:
        assert errors_of({**ROUTER, "options": [], "defaultOption": None}) == [
            "instructions[0].options: a router needs at least one option"
        ]

    def test_router_default_not_an_option(self) -> None:
        assert errors_of("a", {**ROUTER, "defaultOption": "stocks"}) == [
            "instructions[1].defaultOption: 'stocks' is not one of the option ids (weather, news)"
        ]

    def test_router_duplicate_option_ids(self) -> None:
        options = [ROUTER["options"][0], ROUTER["options"][0]]
        assert errors_of({**ROUTER, "options": options}) == [
            "instructions[0].options: duplicate option id 'weather' (options[0] and options[1])"
        ]

    def test_router_option_endpoint_is_validated(self) -> None:
        options = [{"id": "a", "endpoint": {"apiUrl": "file:///etc/passwd"}}]
        assert errors_of({**ROUTER, "options": options, "defaultOption": "a"}) == [
            "instructions[0].options[0].endpoint.apiUrl: 'file:///etc/passwd' is not an http(s) URL"
        ]

    def test_unknown_http_method(self) -> None:
        assert errors_of("a", {**ENDPOINT, "method": "FETCH"}) == [
            "instructions[1].method: unknown HTTP method 'FETCH' "
            "(expected GET, POST, PUT, PATCH or DELETE)"
        ]

    @pytest.mark.parametrize("url", ["ftp://x.io/a", "api.example.com", "https://", ""])
    def test_non_http_api_url(self, url: str) -> None:
        assert errors_of({**ENDPOINT, "apiUrl": url}) == [
            f"instructions[0].apiUrl: '{url}' is not an http(s) URL"
        ]

    def test_misspelt_field_is_rejected(self) -> None:
        assert errors_of({**ENDPOINT, "retry": 2}) == [
            "instructions[0].retry: Extra inputs are not permitted"
        ]

    def test_deterministic_mode_requires_a_parsable_expression(self) -> None:
        assert errors_of({"expression": "is it good", "mode": "deterministic"}) == [
            "instructions[0].mode: the expression does not parse, so it cannot be "
            "'deterministic': expected 'result', 'length', 'not' or '(', found 'is' "
            "at position 0"
        ]

    def test_every_error_is_reported_at_once(self) -> None:
        lines = errors_of({**ENDPOINT, "method": "FETCH"}, {"type": "nope"}, 3)
        assert [line.split(":")[0] for line in lines] == [
            "instructions[0].method",
            "instructions[1]",
            "instructions[2]",
        ]


class TestStatus:
    def test_for_input_lists_pending_steps(self) -> None:
        status = InstructionRunStatus.for_input(
            run("a", {"expression": "x"}, ENDPOINT, {"type": "thread", "collectFromSteps": [0]})
        )
        assert status.status == "queued"
        assert [(s.index, s.type, s.status) for s in status.steps] == [
            (0, "llm", "pending"),
            (1, "condition", "pending"),
            (2, "endpoint", "pending"),
            (3, "thread", "pending"),
        ]
        assert status.usage == TokenUsage()
        assert status.execution_order == [] and status.output is None

    def test_usage_adds_up(self) -> None:
        total = TokenUsage(input_tokens=1, output_tokens=2, total_tokens=3) + TokenUsage(
            input_tokens=10, output_tokens=20, total_tokens=30
        )
        assert total == TokenUsage(input_tokens=11, output_tokens=22, total_tokens=33)

    def test_step_state_round_trips(self) -> None:
        state = StepState.model_validate(
            {
                "index": 2,
                "type": "router",
                "status": "completed",
                "router": {"chosen": "news", "fallback_used": True},
                "condition": {"mode": "llm", "verdict": False, "reason": "no"},
                "error": {"type": "HttpServerError", "message": "502", "attempts": 3},
            }
        )
        assert StepState.model_validate_json(state.model_dump_json()) == state


class TestErrorDetails:
    def test_items_name_the_field_and_drop_the_type_tag(self) -> None:
        with pytest.raises(ValidationError) as caught:
            InstructionRunInput.model_validate(
                {"context": "c", "instructions": ["x", {"type": "endpoint", "apiUrl": "ftp://x"}]}
            )
        [item] = error_details(caught.value.errors())
        assert item["loc"] == ["instructions", 1, "apiUrl"]
        assert item["msg"] == "instructions[1].apiUrl: 'ftp://x' is not an http(s) URL"
        assert item["type"] == "http_url"

    def test_prefix_locates_a_run_in_a_batch(self) -> None:
        with pytest.raises(ValidationError) as caught:
            InstructionRunInput.model_validate(
                {
                    "context": "c",
                    "instructions": [
                        {
                            "instruction": "x",
                            "condition": {"expression": "e", "ifTrue": [5], "ifFalse": [6]},
                        }
                    ],
                }
            )
        details = error_details(caught.value.errors(), ("workflows", 3))
        assert [item["msg"] for item in details] == [
            "workflows[3].instructions[0].condition.ifTrue[0]: step 5 is out of range "
            "(1 instruction)",
            "workflows[3].instructions[0].condition.ifFalse[0]: step 6 is out of range "
            "(1 instruction)",
        ]
        assert all(item["loc"] == ["workflows", 3, "instructions"] for item in details)

    def test_prefix_on_a_whole_body_error(self) -> None:
        with pytest.raises(ValidationError) as caught:
            InstructionRunInput.model_validate("not an object")
        [item] = error_details(caught.value.errors(), ("workflows", 0))
        assert item["msg"].startswith("workflows[0]: Input should be")


class TestEngineAndStatusWire:
    def test_engine_defaults_are_the_seed_limits(self) -> None:
        run = InstructionRunInput.model_validate({"context": "c", "instructions": ["x"]})
        engine = run.engine
        assert (engine.llm_step_timeout_seconds, engine.llm_condition_timeout_seconds) == (
            300.0,
            120.0,
        )
        assert (engine.llm_max_retries, engine.step_budget) == (3, 100)

    def test_status_is_camel_case_on_the_wire_and_reads_both_spellings(self) -> None:
        status = InstructionRunStatus(execution_order=[0], usage=TokenUsage(input_tokens=2))
        wire = status.model_dump(mode="json")
        assert wire["executionOrder"] == [0]
        assert wire["usage"]["inputTokens"] == 2
        assert InstructionRunStatus.model_validate(wire) == status
        assert InstructionRunStatus.model_validate(status.model_dump(by_alias=False)) == status
