"""Thread steps: gather earlier steps' results, format them, and judge completeness.

Formats (a step that never ran shows `(skipped)`, one that ran without output shows
`(no output)`; results are stripped of surrounding whitespace)::

    numbered    1. <result>            one item per collected step, numbered from 1 in the
                2. <result>            order of collectFromSteps; continuation lines of a
                                       multi-line result are indented three spaces
    markdown    ## Step <index>        the step's 0-based instruction index, a blank line,
                                       its result; blocks separated by a blank line
                <result>
    json        [{"step": 0, "status": "ran", "result": "..."}, ...]
                                       indented by 2; the raw result, null when skipped
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from workflows.instructions.conditions import evaluate, parse
from workflows.instructions.models import ThreadFormat

SKIPPED = "(skipped)"
NO_OUTPUT = "(no output)"


class CollectedItem(BaseModel):
    """One collected step: `ran` when it has an entry in the results, else `skipped`."""

    model_config = ConfigDict(frozen=True)

    step: int
    status: Literal["ran", "skipped"]
    result: str | None = None


def collect(results: Mapping[int, str | None], steps: Sequence[int]) -> list[CollectedItem]:
    """Pick `steps` out of `results` (index -> result of every executed step), in order."""
    return [
        CollectedItem(step=step, status="ran", result=results[step])
        if step in results
        else CollectedItem(step=step, status="skipped")
        for step in steps
    ]


def _shown(item: CollectedItem) -> str:
    if item.status == "skipped":
        return SKIPPED
    text = (item.result or "").strip()
    return text or NO_OUTPUT


def format_thread(items: Sequence[CollectedItem], fmt: ThreadFormat) -> str:
    """Render collected items as `numbered`, `markdown` or `json` text (see module doc)."""
    if fmt == "numbered":
        lines = []
        for number, item in enumerate(items, start=1):
            marker = f"{number}. "
            body = _shown(item).replace("\n", "\n" + " " * len(marker))
            lines.append(marker + body)
        return "\n".join(lines)
    if fmt == "markdown":
        return "\n\n".join(f"## Step {item.step}\n\n{_shown(item)}" for item in items)
    if fmt == "json":
        return json.dumps([item.model_dump() for item in items], ensure_ascii=False, indent=2)
    raise ValueError(f"unknown thread format {fmt!r} (expected json, markdown or numbered)")


def deterministic_complete(
    items: Sequence[CollectedItem],
    expression: str | None = None,
    fmt: ThreadFormat = "markdown",
) -> bool:
    """Decide whether a thread is complete without an LLM.

    Args:
        items: The collected steps.
        expression: A condition (`conditions`) tested against the thread's text
            formatted as `fmt`; replaces the default rule. With `fmt="json"` it can look
            inside: `result[0].status == 'ran'`.
        fmt: The thread's output format, so the expression sees what the thread outputs.

    Returns:
        Without an expression: every listed step ran and produced non-blank output.

    Raises:
        ConditionSyntaxError: `expression` is not in the condition language.
    """
    if expression is None or not expression.strip():
        return all(item.status == "ran" and (item.result or "").strip() for item in items)
    return evaluate(parse(expression), format_thread(items, fmt))
