"""Which steps a rerun reuses (`workflows.dag.rerun`): plain, synchronous logic."""

from __future__ import annotations

import pytest

from workflows.dag.graph import DagGraph
from workflows.dag.models import DagRunResult, StepConfig, StepState, Usage
from workflows.dag.rerun import (
    UnknownStep,
    edited_steps,
    is_unchanged,
    plan_rerun,
    reuse_steps,
    reused_states,
    take_unchanged,
    unchanged_candidates,
)


def step(name: str, *after: str) -> StepConfig:
    return StepConfig(
        step_name=name, usid=f"u-{name}", service_url=f"https://x/{name}", dependencies=[*after]
    )


STEPS = [step("root"), step("a", "root"), step("b", "root"), step("b1", "b"), step("j", "a", "b1")]
GRAPH = DagGraph.build(STEPS)


def source(**statuses: str) -> DagRunResult:
    return DagRunResult(
        workflow_id="src",
        steps={
            s.step_name: StepState(
                step_name=s.step_name, usid=s.usid, status=statuses.get(s.step_name, "completed")
            )
            for s in STEPS
        },
    )


def test_without_from_step_the_unfinished_steps_and_their_downstream_run_again() -> None:
    reused, rerun = plan_rerun(GRAPH, source(b1="failed", j="cancelled"), None, set())
    assert reused == ["root", "a", "b"]
    assert rerun == ["b1", "j"]


def test_from_step_reruns_it_and_its_descendants_only() -> None:
    assert plan_rerun(GRAPH, source(), "b", set()) == (["root", "a"], ["b", "b1", "j"])


def test_an_edit_reruns_its_step_but_an_edit_repeating_a_value_does_not() -> None:
    steps, edited = edited_steps(STEPS, {"a": {"timeout": 5}, "b": {"service_url": "https://x/b"}})
    assert edited == {"a"}
    assert next(s for s in steps if s["step_name"] == "a")["timeout"] == 5
    assert plan_rerun(GRAPH, source(), None, edited) == (["root", "b", "b1"], ["a", "j"])


def test_a_rerun_naming_no_such_step_is_refused() -> None:
    with pytest.raises(UnknownStep, match="'nope'"):
        edited_steps(STEPS, {"nope": {}})
    with pytest.raises(UnknownStep, match="'nope'"):
        plan_rerun(GRAPH, source(), "nope", set())


def test_reused_steps_carry_their_values_and_what_they_saved() -> None:
    ran = source()
    ran.steps["root"].attempts = 3
    ran.steps["root"].outputs = {"out": {"$ref": "/runs/src/outputs/out", "size": 1, "type": "x"}}
    ran.steps["a"].result = {"json": {"label": "fruit"}}
    ran.steps["a"].usage = Usage(input_tokens=7, output_tokens=3)
    ran.steps["a"].reused_from = "older"
    carried = reused_states(ran, ["root", "a"])
    assert carried.steps["root"].reused_from == "src"
    assert carried.steps["a"].reused_from == "older"  # where its call was made

    new = DagRunResult(workflow_id="new")
    variables = reuse_steps(new, carried)
    assert variables["a_result"] == {"json": {"label": "fruit"}}
    assert variables["out"] == {"$ref": "/runs/src/outputs/out", "size": 1, "type": "x"}
    assert new.rerun_of == "src"
    assert new.reuse is not None
    assert new.reuse.model_dump() == {
        "steps_reused": 2,
        "calls_saved": 4,
        "tokens_saved": 10,
        "unchanged": [],
    }


def test_a_renamed_step_runs_again_under_its_new_name() -> None:
    steps, edited = edited_steps(STEPS, {"j": {"step_name": "k"}})
    renamed = DagGraph.build([StepConfig.model_validate(config) for config in steps])
    assert plan_rerun(renamed, source(), None, edited) == (["root", "a", "b", "b1"], ["k"])


def keyed(**statuses: str) -> DagRunResult:
    """A source whose completed steps recorded their request keys."""
    ran = source(**statuses)
    for state in ran.steps.values():
        state.request_key = f"key-{state.step_name}" if state.status == "completed" else None
    return ran


def test_only_steps_rerun_because_of_edits_may_turn_out_unchanged() -> None:
    # `b` edited, `a` failed: `j` is downstream of the failure, so it runs whatever `b` does.
    ran = keyed(a="failed", j="aborted")
    _, rerun = plan_rerun(GRAPH, ran, None, {"b"})

    assert rerun == ["a", "b", "b1", "j"]
    assert sorted(unchanged_candidates(GRAPH, ran, None, rerun)) == ["b", "b1"]
    # from_step and its descendants run again, edited or not.
    _, rerun = plan_rerun(GRAPH, keyed(), "b1", {"b"})
    assert sorted(unchanged_candidates(GRAPH, keyed(), "b1", rerun)) == ["b"]


def test_a_step_without_a_request_key_or_holding_a_reference_is_no_candidate() -> None:
    ran = keyed()
    ran.steps["b"].request_key = None
    ran.steps["b1"].outputs = {"big": {"$ref": "/runs/src/outputs/big"}}
    _, rerun = plan_rerun(GRAPH, ran, None, {"b", "b1"})

    assert sorted(unchanged_candidates(GRAPH, ran, None, rerun)) == ["j"]


def test_an_unchanged_step_is_taken_from_its_source_and_named() -> None:
    ran = keyed()
    ran.steps["b"].result = {"n": 1}
    ran.steps["b"].usage = Usage(input_tokens=3, output_tokens=4)
    _, rerun = plan_rerun(GRAPH, ran, None, {"b"})
    taken = reused_states(ran, ["root", "a"])
    taken.edited = unchanged_candidates(GRAPH, ran, None, rerun)
    result = DagRunResult(workflow_id="new")
    reuse_steps(result, taken)

    assert not is_unchanged(taken, "b", "key-other", upstream_reused=True)
    assert not is_unchanged(taken, "b", "key-b", upstream_reused=False)
    assert is_unchanged(taken, "b", "key-b", upstream_reused=True)
    variables = take_unchanged(result, taken, "b")
    assert variables == {"b_result": {"n": 1}}
    assert result.steps["b"].reused_from == "src"
    assert result.reuse is not None
    assert result.reuse.unchanged == ["b"]
    assert (result.reuse.steps_reused, result.reuse.tokens_saved) == (3, 7)
