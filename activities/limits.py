"""Bounds on what a payload may hold, checked at the door so no run can wedge on them.

Temporal decodes every payload with recursive code, and a value nested a few hundred levels
deep fails a workflow task on every retry, so the run could never close. Such input is
refused with a 422 naming the field instead.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticCustomError

#: How deeply a user's JSON value (input_data, bodies, headers, results) may nest.
MAX_JSON_DEPTH = 64


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply `value` nests objects and lists (a scalar is 0), counting no further than
    `limit + 1`; iterative, so no depth can exhaust the stack."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def shallow_json(value: Any) -> Any:
    """A pydantic validator: refuse a value that nests deeper than `MAX_JSON_DEPTH`."""
    if json_depth(value) > MAX_JSON_DEPTH:
        raise PydanticCustomError(
            "json_too_deep",
            "nested more than {limit} levels deep",
            {"limit": MAX_JSON_DEPTH},
        )
    return value
