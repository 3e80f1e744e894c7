"""How a DAG run shows step results and outputs: inline when small, by reference when large."""

from __future__ import annotations

import json

import pytest

from activities.store.models import redis_key
from workflows.dag.references import (
    is_reference,
    json_size,
    json_type,
    output_route,
    result_route,
    step_view,
)

LIMIT = 100


def test_small_values_stay_inline() -> None:
    body = {"ok": True}
    view = step_view("run-1", "fetch", body, {"a": body, "b": body}, LIMIT)
    assert view.result == body
    assert view.outputs == {"a": body, "b": body}
    assert not view.store_result


def test_a_large_result_that_an_output_holds_shares_its_reference() -> None:
    body = {"text": "x" * 500}
    view = step_view("run-1", "fetch", body, {"doc": body, "copy": body}, LIMIT)
    expected = {"$ref": "/runs/run-1/outputs/doc", "size": json_size(body), "type": "object"}
    assert view.result == expected
    assert view.outputs["doc"] == expected
    assert view.outputs["copy"] == {**expected, "$ref": "/runs/run-1/outputs/copy"}
    assert not view.store_result  # the outputs are in Redis already: stored once


def test_a_large_result_no_output_holds_is_stored_under_its_own_route() -> None:
    completion = {"choices": [{"message": {"content": "short"}}], "usage": "u" * 500}
    view = step_view("ns/run-1", "summarize", completion, {"summary": "short"}, LIMIT)
    assert view.result == {
        "$ref": "/runs/ns/run-1/steps/summarize/result",
        "size": json_size(completion),
        "type": "object",
    }
    assert view.outputs == {"summary": "short"}
    assert view.store_result


def test_a_large_output_of_a_small_result_is_a_reference() -> None:
    text = "é" * 80  # 160 bytes of UTF-8 once quoted, more than 80 characters
    view = step_view("run-1", "s", {"x": 1}, {"summary": text}, LIMIT)
    assert view.outputs["summary"] == {
        "$ref": "/runs/run-1/outputs/summary",
        "size": len(json.dumps(text, ensure_ascii=False).encode()),
        "type": "string",
    }
    assert view.result == {"x": 1}


def test_the_limit_is_inclusive() -> None:
    value = "a" * (LIMIT - 2)  # exactly LIMIT bytes with its quotes
    assert json_size(value) == LIMIT
    assert step_view("r", "s", value, {}, LIMIT).result == value
    assert is_reference(step_view("r", "s", value + "a", {}, LIMIT).result)


@pytest.mark.parametrize(
    ("value", "kind"),
    [({}, "object"), ([], "array"), ("", "string"), (1.5, "number"), (True, "boolean")]
    + [(None, "null")],
)
def test_json_types(value: object, kind: str) -> None:
    assert json_type(value) == kind


def test_routes_escape_names_and_keys_follow_the_outputs() -> None:
    assert output_route("wf", "a b/c") == "/runs/wf/outputs/a%20b%2Fc"
    assert result_route("wf", "step 1") == "/runs/wf/steps/step%201/result"
    assert redis_key(None, "acme", "wf", "doc") == "acme:wf:doc"
    assert redis_key("t", "a:b", "c", "doc") == "t:a%3Ab:c:doc"
    assert redis_key(None, "a", "b:c", "doc") == "a:b%3Ac:doc"


def test_only_reference_objects_are_references() -> None:
    assert is_reference({"$ref": "/runs/x/outputs/y", "size": 3, "type": "string"})
    assert not is_reference({"$ref": "#/definitions/x"})  # a user's JSON Schema
    assert not is_reference("$ref")
