"""Large values shown by reference: what a run's status, result and webhook events carry in
place of a step result or output over `EngineOptions.value_inline_max_bytes`.

    {"$ref": "/runs/<workflow_id>/outputs/<name>", "size": 10485760, "type": "object"}

`$ref` is the gateway route that returns the whole value, `size` its length in bytes as that
route returns it (UTF-8 JSON), `type` its JSON type. The workflow keeps the whole value for
templating. Outputs are in Redis already (`<namespace>:<workflow_id>:<output>`); a large
result is stored beside them under `<namespace>:<workflow_id>:<step>_result`, the name
templates know it by, unless an output holds that very value (any response but an LLM
answer), whose reference it then shares rather than writing a second copy.

Pure: no Temporal, no I/O; the workflow and the gateway both use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from activities.store.models import output_json

REF = "$ref"


def output_route(workflow_id: str, name: str) -> str:
    return f"/runs/{workflow_id}/outputs/{quote(name, safe='')}"


def result_route(workflow_id: str, step_name: str) -> str:
    return f"/runs/{workflow_id}/steps/{quote(step_name, safe='')}/result"


def result_variable(step_name: str) -> str:
    """The name a step's parsed result goes by in templates and in Redis."""
    return f"{step_name}_result"


def json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def json_size(value: Any) -> int:
    """Bytes of `value` as JSON, as it is stored and the outputs route returns it."""
    return len(output_json(value))


def reference(route: str, value: Any, size: int) -> dict[str, Any]:
    return {REF: route, "size": size, "type": json_type(value)}


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get(REF), str) and "size" in value


@dataclass
class StepView:
    """A finished step's result and outputs as the run's state shows them."""

    result: Any
    outputs: dict[str, Any] = field(default_factory=dict)
    #: The result must be stored under `result_variable(step)`: large, and no output holds it.
    store_result: bool = False


def step_view(
    workflow_id: str,
    step_name: str,
    result: Any,
    outputs: dict[str, Any],
    max_inline_bytes: int,
) -> StepView:
    """Each value inline when it is at most `max_inline_bytes` of JSON, else a reference.

    Outputs usually hold one value (the step's main value) under several names; each distinct
    value is measured once.
    """
    sizes: dict[int, int] = {}

    def size_of(value: Any) -> int:
        if id(value) not in sizes:
            sizes[id(value)] = json_size(value)
        return sizes[id(value)]

    shown_outputs = {
        name: (
            reference(output_route(workflow_id, name), value, size_of(value))
            if size_of(value) > max_inline_bytes
            else value
        )
        for name, value in outputs.items()
    }
    if size_of(result) <= max_inline_bytes:
        return StepView(result, shown_outputs)
    holder = next((name for name, value in outputs.items() if value is result), None)
    if holder is not None:
        return StepView(shown_outputs[holder], shown_outputs)
    route = result_route(workflow_id, step_name)
    return StepView(reference(route, result, size_of(result)), shown_outputs, store_result=True)
