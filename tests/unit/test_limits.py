"""Depth bounds on user JSON: counted without recursion, strings and escapes respected."""

from __future__ import annotations

import json

import pytest

from kernel.limits import MAX_JSON_DEPTH, json_depth, raw_json_too_deep


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [0, 1, 5, MAX_JSON_DEPTH])
def test_json_depth_counts_levels(depth: int) -> None:
    assert json_depth(nested(depth)) == depth


def test_json_depth_stops_counting_past_the_limit_without_recursing() -> None:
    assert json_depth(nested(50_000), limit=10) == 11


@pytest.mark.parametrize(
    ("text", "too_deep"),
    [
        ("[" * 81 + "]" * 81, True),
        ("[" * 80 + "]" * 80, False),
        (json.dumps({"s": "[" * 500}), False),
        (json.dumps({"s": '\\"' + "{" * 500}), False),
        (json.dumps(["\\"] * 3 + ["[" * 200]), False),
        ("[" * 100_000, True),
        ("", False),
    ],
)
def test_raw_json_depth(text: str, too_deep: bool) -> None:
    assert raw_json_too_deep(text.encode()) is too_deep


@pytest.mark.parametrize(
    "body", [b"[]" * 500_000, b'"' + b"x" * 1_000_000 + b'"', b'"\\\\' * 300_000, b"[" * 10**6]
)
def test_a_megabyte_is_scanned_whole(body: bytes) -> None:
    # Only the million open brackets are too deep; how the scan's time grows with the body:
    # bench/hostile_inputs.py.
    assert raw_json_too_deep(body) is body.startswith(b"[[")
