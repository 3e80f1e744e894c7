"""`map_over` as plain logic (`workflows.dag.mapping`): tolerances, how items are laid out
over batches, what a mapped step may template, and which items a rerun runs again."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.unit.test_dag_graph import payload, problems, step
from workflows.dag.graph import DagGraph
from workflows.dag.map_run import carried_indices
from workflows.dag.mapping import (
    MAX_MAP_BATCHES,
    MapOptions,
    batch_plan,
    resolve_items,
)
from workflows.dag.models import DagRunResult, PipelineRequest, StepConfig, StepState
from workflows.dag.rerun import plan_rerun, reused_states
from workflows.shared.failures import StepFailed


@pytest.mark.parametrize(
    ("options", "total", "allowed"),
    [
        ({}, 200, 0),
        ({"tolerated_failure_percent": 10}, 200, 20),
        ({"tolerated_failure_percent": 2}, 200, 4),
        ({"tolerated_failure_percent": 2.5}, 10, 0),
        ({"tolerated_failure_count": 7}, 200, 7),
    ],
)
def test_allowed_failures(options: dict[str, float], total: int, allowed: int) -> None:
    assert MapOptions.model_validate(options).allowed_failures(total) == allowed


def test_both_tolerances_are_refused_naming_the_map_field() -> None:
    with pytest.raises(ValidationError) as info:
        payload(
            step(
                "each",
                map_over="{{input_data.items}}",
                map={"tolerated_failure_percent": 5, "tolerated_failure_count": 2},
            )
        )
    [error] = info.value.errors()
    assert error["loc"] == ("STEPS_CONFIG", 0, "map")
    assert "not both" in error["msg"]


def test_a_misspelt_map_option_is_refused() -> None:
    mapped = step("each", map_over="{{input_data.items}}", map={"concurency": 5})
    with pytest.raises(ValidationError) as info:
        PipelineRequest.model_validate({"workflow_id": "wf", "STEPS_CONFIG": [mapped]})
    [error] = info.value.errors()
    assert error["loc"] == ("STEPS_CONFIG", 0, "map", "concurency")
    assert error["type"] == "extra_forbidden"  # the gateway adds the name meant


def test_small_maps_run_inline_and_large_ones_in_at_most_max_batches() -> None:
    options = MapOptions(concurrency=50)
    assert batch_plan(200, options, inline_max_items=200).batches == []
    ten_thousand = batch_plan(10_000, options, inline_max_items=200)
    assert len(ten_thousand.batches) == 10 and ten_thousand.batches[0] == range(0, 1000)
    assert (ten_thousand.parallel, ten_thousand.per_batch_concurrency) == (5, 10)
    huge = batch_plan(1_000_000, options, inline_max_items=200)
    assert len(huge.batches) == MAX_MAP_BATCHES
    assert huge.batches[-1].stop == 1_000_000
    sized = batch_plan(100, MapOptions(batch_size=30, concurrency=4), inline_max_items=10)
    assert [len(b) for b in sized.batches] == [30, 30, 30, 10]
    assert (sized.parallel, sized.per_batch_concurrency) == (1, 4)


def test_map_over_must_resolve_to_a_list() -> None:
    assert resolve_items("{{xs}}", {"xs": [1, 2]}, "each") == [1, 2]
    with pytest.raises(StepFailed) as info:
        resolve_items("{{xs}}", {"xs": 3}, "each")
    assert info.value.failure.message == "step 'each': map_over {{xs}} must be a list, and it is 3"


def test_item_and_item_index_are_variables_of_mapped_steps_only() -> None:
    body = {"body": {"n": "{{item.n}}", "i": "{{item_index}}"}}
    mapped = step("each", map_over="{{input_data.items}}", input_prep_config=body)
    assert problems(mapped, input_data={"items": []}) == []
    plain = step("plain", input_prep_config=body)
    found = problems(plain)
    assert len(found) == 2 and all("names no variable" in msg for _, msg in found)


def test_map_needs_map_over_and_a_single_template() -> None:
    assert problems(step("each", map={"concurrency": 2})) == [
        (("STEPS_CONFIG", 0, "map"), "step 'each': map needs map_over")
    ]
    [(loc, msg)] = problems(step("each", map_over="items: {{input_data.items}}"))
    assert loc == ("STEPS_CONFIG", 0, "map_over") and "single {{…}} template" in msg
    [(loc, msg)] = problems(step("each", map_over="{{nothing}}"))
    assert loc == ("STEPS_CONFIG", 0, "map_over") and "names no variable" in msg


def test_a_map_over_reads_a_step_it_depends_on() -> None:
    fetch = step("fetch")
    each = step("each", map_over="{{fetch_result.items}}")
    [(loc, msg)] = problems(fetch, each)
    assert loc == ("STEPS_CONFIG", 1, "map_over") and "add 'fetch' to its dependencies" in msg
    assert problems(fetch, {**each, "dependencies": ["fetch"]}) == []


def test_a_rerun_runs_a_map_step_with_failed_items_again_carrying_its_results() -> None:
    steps = [
        StepConfig.model_validate(step("each", map_over="{{input_data.items}}")),
        StepConfig.model_validate(step("after", "each")),
    ]
    source = DagRunResult(
        workflow_id="src",
        steps={
            "each": StepState(
                step_name="each",
                usid="u-each",
                status="completed",
                result=["a", None, "c"],
                failed_items=[1],
            ),
            "after": StepState(step_name="after", usid="u-after", status="completed"),
        },
    )
    reused, rerun = plan_rerun(DagGraph.build(steps), source, None, set())
    assert (reused, rerun) == ([], ["each", "after"])
    carried = reused_states(source, reused, carry_items=rerun).map_items["each"]
    assert carried.failed_items == [1]
    assert carried_indices(3, carried.results, carried.failed_items) == {0: "a", 2: "c"}
    # A list of another length runs whole.
    assert carried_indices(4, carried.results, carried.failed_items) is None
    # An edited map step (not carried) runs every item again.
    assert reused_states(source, reused, carry_items=["after"]).map_items == {}
