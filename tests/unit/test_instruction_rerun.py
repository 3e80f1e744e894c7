"""Which instructions a rerun reuses and the queue it starts with (`workflows.instructions.rerun`),
checked synchronously against recorded statuses."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.instructions.models import (
    ConditionOutcome,
    InstructionRunInput,
    InstructionRunStatus,
    StepState,
)
from workflows.instructions.rerun import (
    UnknownInstruction,
    calls_made,
    edited_instructions,
    plan_rerun,
    reuse_steps,
    reused_states,
)

URL = "https://api.example.com/x"


def instructions(items: list[Any]) -> InstructionRunInput:
    return InstructionRunInput.model_validate({"context": "c", "instructions": items})


def source(
    run: InstructionRunInput, order: list[int], failed: int | None = None, **verdicts: bool
) -> InstructionRunStatus:
    """A status in which `order` ran (all completed but `failed`), conditions as `verdicts`
    (`s<i>=True`) say."""
    status = InstructionRunStatus.for_input(run)
    status.execution_order = list(order)
    for index in order:
        state = status.steps[index]
        state.status = "failed" if index == failed else "completed"
        state.result = f"r{index}"
        if f"s{index}" in verdicts:
            state.condition = ConditionOutcome(mode="deterministic", verdict=verdicts[f"s{index}"])
    return status


def test_with_no_from_the_rerun_starts_at_the_first_step_that_did_not_complete() -> None:
    run = instructions(["a", "b", "c", "d"])
    planned = plan_rerun(run.instructions, source(run, [0, 1, 2], failed=2), None, set())
    assert planned.reused == [0, 1]
    assert planned.queued == [2, 3]
    assert planned.plan.executed == [0, 1]


def test_from_an_instruction_after_a_jump_keeps_the_jump() -> None:
    jump = {"expression": "result contains 'x'", "ifTrue": [2], "ifFalse": [3]}
    run = instructions([{"instruction": "a", "condition": jump}, "b", "c", "d"])
    recorded = source(run, [0, 2, 1], s0=True)
    planned = plan_rerun(run.instructions, recorded, 2, set())
    assert planned.reused == [0]
    assert planned.queued == [2, 1]
    # From 1: the branch already taken (2) is reused too.
    assert plan_rerun(run.instructions, recorded, 1, set()).reused == [0, 2]


def test_an_edit_that_changes_the_branches_stops_the_reuse_where_the_plans_part() -> None:
    run = instructions(["a", "b", "c"])
    recorded = source(run, [0, 1, 2])
    configs, edited = edited_instructions(
        run.instructions,
        {"2": {"condition": {"expression": "result is empty", "ifTrue": [1]}}},
    )
    assert edited == {2}
    changed = instructions(configs)
    # Step 1 is a branch target now, so the new plan hands out 2 after 0: reuse stops there.
    planned = plan_rerun(changed.instructions, recorded, None, edited)
    assert planned.reused == [0]
    assert planned.queued == [2]


def test_an_override_that_repeats_a_value_changes_nothing() -> None:
    run = instructions([{"type": "endpoint", "apiUrl": URL}, "b"])
    _, edited = edited_instructions(run.instructions, {"0": {"apiUrl": URL}})
    assert edited == set()
    # Either spelling edits the one field.
    configs, edited = edited_instructions(run.instructions, {"0": {"api_url": f"{URL}/v2"}})
    assert edited == {0}
    assert instructions(configs).instructions[0].model_dump()["apiUrl"] == f"{URL}/v2"
    with pytest.raises(UnknownInstruction, match="no instruction '2'"):
        edited_instructions(run.instructions, {"2": {"apiUrl": URL}})


def test_from_an_instruction_that_never_ran_is_refused() -> None:
    jump = {"expression": "result contains 'x'", "ifTrue": [2]}
    run = instructions([{"instruction": "a", "condition": jump}, "b", "c"])
    with pytest.raises(UnknownInstruction, match="instruction 2 did not run"):
        plan_rerun(run.instructions, source(run, [0, 1], s0=False), 2, set())


def test_reused_states_fill_the_new_runs_status_and_count_what_they_saved() -> None:
    router = {
        "type": "router",
        "evaluationPrompt": "which?",
        "options": [{"id": "a", "endpoint": {"apiUrl": URL}}],
    }
    run = instructions(["a", router, {"expression": "is it good?", "mode": "llm"}, "d"])
    recorded = source(run, [0, 1, 2, 3], failed=3, s2=True)
    recorded.steps[0].usage.input_tokens, recorded.steps[0].usage.output_tokens = 5, 2
    recorded.steps[2].condition = ConditionOutcome(mode="llm", verdict=True)
    planned = plan_rerun(run.instructions, recorded, None, set())
    rerun = reused_states("src", recorded, planned)
    status = InstructionRunStatus.for_input(run)

    results = reuse_steps(status, rerun, run.instructions)

    assert results == {0: "r0", 1: "r1", 2: "r2"}
    assert status.execution_order == [0, 1, 2] and status.output == "r2"
    assert [s.reused_from for s in status.steps] == ["src", "src", "src", None]
    assert status.rerun_of == "src"
    assert status.reuse is not None
    # An LLM call, a router's choice and call, an LLM verdict.
    assert (status.reuse.steps_reused, status.reuse.calls_saved) == (3, 4)
    assert status.reuse.tokens_saved == 7
    assert calls_made(run.instructions[3], StepState(index=3, type="llm")) == 1
