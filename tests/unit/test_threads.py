"""Thread steps: collection, the three output formats exactly, and completeness."""

from __future__ import annotations

import json

import pytest

from workflows.instructions.conditions import ConditionSyntaxError
from workflows.instructions.threads import (
    CollectedItem,
    collect,
    deterministic_complete,
    format_thread,
)

RESULTS: dict[int, str | None] = {0: "alpha", 1: "beta\n", 3: "gamma"}


def items() -> list[CollectedItem]:
    return collect(RESULTS, [0, 2, 3])


def test_collect_marks_ran_and_skipped_in_the_order_asked() -> None:
    assert collect(RESULTS, [3, 2, 0]) == [
        CollectedItem(step=3, status="ran", result="gamma"),
        CollectedItem(step=2, status="skipped", result=None),
        CollectedItem(step=0, status="ran", result="alpha"),
    ]


def test_a_step_that_ran_without_output_still_ran() -> None:
    assert collect({4: None}, [4]) == [CollectedItem(step=4, status="ran", result=None)]


def test_numbered() -> None:
    assert format_thread(items(), "numbered") == "1. alpha\n2. (skipped)\n3. gamma"


def test_numbered_indents_multi_line_results() -> None:
    text = format_thread(collect({0: "first\nsecond", 1: ""}, [0, 1]), "numbered")
    assert text == "1. first\n   second\n2. (no output)"


def test_markdown() -> None:
    assert format_thread(items(), "markdown") == (
        "## Step 0\n\nalpha\n\n## Step 2\n\n(skipped)\n\n## Step 3\n\ngamma"
    )


def test_json() -> None:
    text = format_thread(collect(RESULTS, [0, 1, 2]), "json")
    assert json.loads(text) == [
        {"step": 0, "status": "ran", "result": "alpha"},
        {"step": 1, "status": "ran", "result": "beta\n"},
        {"step": 2, "status": "skipped", "result": None},
    ]
    assert text.startswith('[\n  {\n    "step": 0,\n    "status": "ran",\n    "result": "alpha"')


def test_json_keeps_unicode_readable() -> None:
    assert "café" in format_thread(collect({0: "café"}, [0]), "json")


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown thread format"):
        format_thread(items(), "csv")  # type: ignore[arg-type]


class TestDeterministicComplete:
    def test_complete_when_every_step_ran_with_output(self) -> None:
        assert deterministic_complete(collect(RESULTS, [0, 1, 3]))

    def test_incomplete_when_a_step_was_skipped(self) -> None:
        assert not deterministic_complete(items())

    def test_incomplete_when_a_step_produced_blank_output(self) -> None:
        assert not deterministic_complete(collect({0: "a", 1: "  \n"}, [0, 1]))
        assert not deterministic_complete(collect({0: "a", 1: None}, [0, 1]))

    def test_expression_replaces_the_default_rule(self) -> None:
        assert deterministic_complete(items(), "result contains 'gamma'")
        assert not deterministic_complete(items(), "not result contains '(skipped)'")
        assert deterministic_complete(items(), "result contains '## Step 3'", "markdown")
        assert deterministic_complete(items(), "result matches /^3\\. gamma$/m", "numbered")

    def test_expression_over_json_can_look_inside(self) -> None:
        assert deterministic_complete(items(), "result[0].status == 'ran'", "json")
        assert not deterministic_complete(items(), "result[1].status == 'ran'", "json")

    def test_blank_expression_means_the_default_rule(self) -> None:
        assert not deterministic_complete(items(), "  ")

    def test_bad_expression_raises(self) -> None:
        with pytest.raises(ConditionSyntaxError):
            deterministic_complete(items(), "all steps look done")
