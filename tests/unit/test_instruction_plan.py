"""The instruction queue policy: order, branches, no re-execution, budget and helpers."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.instructions.conditions import evaluate, parse
from workflows.instructions.models import (
    InstructionRunInput,
    RouterInstruction,
    condition_of,
)
from workflows.instructions.plan import (
    InstructionPlan,
    StepBudgetExceeded,
    choose_router_option,
    endpoint_renderer,
    endpoint_result_text,
    llm_prompt,
    source_text,
)


def instructions(*items: Any) -> InstructionRunInput:
    return InstructionRunInput.model_validate({"context": "CTX", "instructions": list(items)})


BUDGET = 100


def plan_for(run: InstructionRunInput, max_steps: int = BUDGET) -> InstructionPlan:
    return InstructionPlan(run.instructions, max_steps=max_steps)


def drain(plan: InstructionPlan) -> list[int]:
    """Run every step the plan hands out, with no condition taken: the queue, in order."""
    order = []
    while (index := plan.next_step()) is not None:
        order.append(index)
        plan.record_executed(index)
    return order


def drive(run: InstructionRunInput, outputs: dict[int, str]) -> tuple[list[int], list[int]]:
    """Run the plan as the workflow would; LLM steps 'answer' with outputs[index].

    Returns the executed steps in order, and the steps never executed.
    """
    plan = plan_for(run)
    results: dict[int, str | None] = {}
    executed: list[int] = []
    while (index := plan.next_step()) is not None:
        executed.append(index)
        previous = source_text(plan.input_source(index), results, run.context)
        step = run.instructions[index]
        results[index] = previous if step.type == "condition" else outputs.get(index, "")
        plan.record_executed(index)
        condition = condition_of(step)
        if condition is not None:
            subject = source_text(plan.condition_source(index), results, run.context)
            verdict = evaluate(parse(condition.expression), subject)
            plan.on_condition(verdict, condition.if_true, condition.if_false)
    return executed, [i for i in range(len(run.instructions)) if i not in executed]


def branch(expression: str, if_true: list[int], if_false: list[int], **more: Any) -> dict:
    return {"expression": expression, "ifTrue": if_true, "ifFalse": if_false, **more}


class TestQueue:
    def test_without_conditions_steps_run_in_order(self) -> None:
        assert drive(instructions("a", "b", "c"), {}) == ([0, 1, 2], [])

    def test_branch_targets_and_initial_queue(self) -> None:
        run = instructions(
            {"instruction": "a", "condition": branch("result is empty", [2], [3])},
            "b",
            "c",
            "d",
            {**_endpoint(), "condition": branch("result is empty", [5], [])},
            "f",
            branch("result is empty", [], [6]),
        )
        plan = plan_for(run)
        assert plan.branch_targets == {2, 3, 5, 6}
        assert drain(plan) == [0, 1, 4]

    def test_true_branch_runs_before_the_rest_and_false_branch_is_skipped(self) -> None:
        run = instructions(
            {"instruction": "classify", "condition": branch("result contains 'bad'", [2], [3])},
            "next",
            "handle bad",
            "handle good",
        )
        assert drive(run, {0: "bad input"}) == ([0, 2, 1], [3])
        assert drive(run, {0: "fine"}) == ([0, 3, 1], [2])

    def test_targets_go_to_the_front_in_the_order_written(self) -> None:
        run = instructions("a", branch("x", [4, 2, 3], []), "c", "d", "e", "f")
        assert drain(plan_for(run)) == [0, 1, 5]
        plan = plan_for(run)
        assert plan.next_step() == 0
        plan.record_executed(0)
        assert plan.next_step() == 1
        plan.record_executed(1)
        assert plan.on_condition(True, [4, 2, 3], []) == [4, 2, 3]
        assert drain(plan) == [4, 2, 3, 5]

    def test_a_branch_back_to_an_executed_step_does_not_rerun_it(self) -> None:
        run = instructions(
            "a",
            branch("result contains 'a'", [2], []),
            {"instruction": "loop", "condition": branch("result contains 'c'", [2], [])},
        )
        executed, skipped = drive(run, {0: "a", 2: "c"})
        assert executed == [0, 1, 2]
        assert skipped == []

    def test_a_step_queued_twice_runs_once(self) -> None:
        plan = plan_for(instructions("a", "b", "c"))
        plan.on_condition(True, [2, 2], [])
        assert drain(plan) == [2, 0, 1]

    def test_nested_branches(self) -> None:
        run = instructions(
            branch("result contains 'CTX'", [1], [3]),
            {"instruction": "one", "condition": branch("result contains 'deep'", [2], [])},
            "two",
            "three",
            "last",
        )
        assert drive(run, {1: "deep"}) == ([0, 1, 2, 4], [3])
        assert drive(run, {1: "shallow"}) == ([0, 1, 4], [2, 3])

    def test_skipped_lists_never_executed_steps(self) -> None:
        run = instructions(branch("result contains 'CTX'", [1], [2]), "b", "c", "d")
        executed, skipped = drive(run, {})
        assert executed == [0, 1, 3]
        assert skipped == [2]

    def test_record_executed_rejects_reruns_and_bad_indices(self) -> None:
        plan = plan_for(instructions("a", "b"))
        plan.record_executed(0)
        with pytest.raises(ValueError, match="already executed"):
            plan.record_executed(0)
        with pytest.raises(ValueError, match="out of range"):
            plan.record_executed(2)
        with pytest.raises(ValueError, match="out of range"):
            plan.on_condition(True, [5], [])


class TestBudget:
    def test_budget_stops_the_run_before_the_next_step(self) -> None:
        plan = plan_for(instructions("a", "b", "c"), max_steps=2)
        for _ in range(2):
            index = plan.next_step()
            assert index is not None
            plan.record_executed(index)
        with pytest.raises(StepBudgetExceeded) as caught:
            plan.next_step()
        assert caught.value.budget == 2
        assert caught.value.next_index == 2
        with pytest.raises(StepBudgetExceeded):
            plan.next_step()  # the step stays queued: asking again says the same

    def test_budget_equal_to_the_work_is_enough(self) -> None:
        plan = plan_for(instructions("a", "b"), max_steps=2)
        assert drain(plan) == [0, 1]

    def test_budget_must_be_positive(self) -> None:
        with pytest.raises(ValueError):
            InstructionPlan(instructions("a").instructions, max_steps=0)


class TestWhichResult:
    def test_input_is_the_previously_executed_step_or_the_context(self) -> None:
        plan = InstructionPlan(instructions("a", "b", "c").instructions, max_steps=BUDGET)
        plan.on_condition(True, [2], [])
        assert plan.input_source(2) is None
        plan.record_executed(plan.next_step() or 0)  # runs 2
        assert plan.input_source(2) is None
        assert plan.input_source(0) == 2
        plan.record_executed(0)
        assert plan.input_source(0) == 2
        assert plan.input_source(1) == 0

    def test_nested_condition_evaluates_its_own_step_by_default(self) -> None:
        plan = plan_for(
            instructions(
                "a",
                {"instruction": "b", "condition": branch("x", [], [])},
                {"instruction": "c", "condition": branch("x", [], [], evaluateAfterStep=0)},
            )
        )
        assert plan.condition_source(1) == 1
        assert plan.condition_source(2) == 0

    def test_condition_step_evaluates_the_previous_result_or_a_named_step(self) -> None:
        plan = plan_for(
            instructions(
                branch("x", [], []),
                "b",
                branch("x", [], []),
                branch("x", [], [], evaluateAfterStep=0),
            )
        )
        assert plan.condition_source(0) is None  # nothing ran yet: the context
        for index in (0, 1, 2):
            plan.record_executed(index)
        assert plan.condition_source(2) == 1
        assert plan.condition_source(3) == 0

    def test_condition_step_passes_its_input_through(self) -> None:
        run = instructions("a", branch("result == 'A'", [3], []), "c", "d")
        plan = InstructionPlan(run.instructions, max_steps=BUDGET)
        results: dict[int, str | None] = {0: "A"}
        plan.record_executed(plan.next_step() or 0)
        index = plan.next_step()
        assert index == 1
        results[1] = source_text(plan.input_source(1), results, run.context)
        assert results[1] == "A"

    def test_step_without_condition_has_no_condition_source(self) -> None:
        plan = InstructionPlan(instructions("a").instructions, max_steps=BUDGET)
        with pytest.raises(ValueError, match="no condition"):
            plan.condition_source(0)

    def test_source_text(self) -> None:
        results: dict[int, str | None] = {0: "zero", 1: None}
        assert source_text(None, results, "ctx") == "ctx"
        assert source_text(0, results, "ctx") == "zero"
        assert source_text(1, results, "ctx") == ""
        assert source_text(2, results, "ctx") == ""

    def test_condition_on_a_later_step_that_has_not_run_sees_empty_text(self) -> None:
        run = instructions(
            {
                "instruction": "a",
                "condition": branch("result is empty", [2], [], evaluateAfterStep=1),
            },
            "b",
            "c",
        )
        assert drive(run, {0: "x", 1: "y"}) == ([0, 2, 1], [])


class TestRenderEndpointValue:
    def test_replaces_in_nested_strings_only(self) -> None:
        body = {
            "q": "{{result}}",
            "meta": {"ctx": "about {{ context }}", "n": 3, "flag": True, "none": None},
            "list": ["{{result}}-{{context}}", 1],
            "{{result}}": "key untouched",
        }
        assert endpoint_renderer("R", "C").render(body) == {
            "q": "R",
            "meta": {"ctx": "about C", "n": 3, "flag": True, "none": None},
            "list": ["R-C", 1],
            "{{result}}": "key untouched",
        }
        assert body["q"] == "{{result}}"

    def test_none_result_and_backslashes(self) -> None:
        assert endpoint_renderer(None, "c").render("[{{result}}]") == "[]"
        assert endpoint_renderer(r"a\1b", "c").render("{{result}}") == r"a\1b"
        assert endpoint_renderer("r", "c").render("{{other}}") == "{{other}}"


class TestRouterAndVerdicts:
    router = RouterInstruction.model_validate(
        {
            "evaluationPrompt": "Which?",
            "options": [
                {"id": "weather", "name": "Weather API", "endpoint": {"apiUrl": "https://w.io"}},
                {"id": "news", "name": "News API", "endpoint": {"apiUrl": "https://n.io"}},
            ],
            "defaultOption": "news",
        }
    )

    @pytest.mark.parametrize(
        ("answer", "chosen", "fallback"),
        [
            ("weather", "weather", False),
            ("  `Weather`.\n", "weather", False),
            ("News API", "news", False),
            ("I would call the weather endpoint.", "weather", False),
            ("weather or news", "news", True),
            ("stocks", "news", True),
            ("", "news", True),
            (None, "news", True),
        ],
    )
    def test_choose_router_option(self, answer: str | None, chosen: str, fallback: bool) -> None:
        option, used_fallback = choose_router_option(self.router, answer)
        assert (option.id, used_fallback) == (chosen, fallback)


def _endpoint() -> dict:
    return {"type": "endpoint", "apiUrl": "https://api.example.com"}


class TestStepText:
    def test_llm_prompt_is_the_instruction_then_the_input(self) -> None:
        assert llm_prompt("Summarise", "Some text") == "Summarise\n\nInput:\nSome text"

    def test_llm_prompt_without_input_is_the_instruction(self) -> None:
        assert llm_prompt("Write a poem", "  \n") == "Write a poem"

    @pytest.mark.parametrize(
        ("body", "is_json", "text"),
        [
            ({"a": 1, "b": "é"}, True, '{"a": 1, "b": "é"}'),
            ([1, 2], True, "[1, 2]"),
            ("quoted", True, '"quoted"'),
            (None, True, "null"),
            ("plain text", False, "plain text"),
            ("", False, ""),
        ],
    )
    def test_endpoint_result_text(self, body: Any, is_json: bool, text: str) -> None:
        assert endpoint_result_text(body, is_json) == text
