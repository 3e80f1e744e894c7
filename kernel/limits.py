"""Bounds on what a payload may hold, checked at the door so no run can wedge on them.

Temporal decodes every payload with recursive code, and a value nested a few hundred levels
deep fails a workflow task on every retry, so the run could never close. Such input is
refused with a 422 naming the field instead.
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate
from typing import Any

from pydantic_core import PydanticCustomError

#: How deeply a user's JSON value (input_data, bodies, headers, results) may nest.
MAX_JSON_DEPTH = 64
#: How deeply a whole request body may nest: a value's own depth plus the payload's levels.
MAX_REQUEST_DEPTH = MAX_JSON_DEPTH + 16

_JSON_STRING = re.compile(rb'"[^"]*"')
#: Opening brackets become 1 and closing ones -1 (as signed bytes); everything else goes.
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


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


def raw_json_too_deep(body: bytes, limit: int = MAX_REQUEST_DEPTH) -> bool:
    """True when JSON text nests brackets deeper than `limit`, read without parsing it (the
    parser itself would recurse that deep). Strings are skipped; malformed text is left to
    the parser to refuse."""
    # Escapes first (`\\\\` then `\\"`), so what remains between quotes is a whole string.
    text = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = _JSON_STRING.sub(b"", text).translate(None, _NOT_BRACKETS)
    steps = array("b", brackets.translate(_BRACKET_STEPS))
    return bool(steps) and max(accumulate(steps)) > limit
