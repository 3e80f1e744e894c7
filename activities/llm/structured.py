"""Reading a model's answer as a JSON value and checking it against the schema it must follow.

The cheap, deterministic rungs of the structured-output ladder (`activities.llm.ladder`): parse
the answer and validate it with `jsonschema`; when it is not JSON, repair it with `json_repair`
(code fences, trailing commas, single quotes, truncated closers) and validate that. No I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from json_repair import repair_json

from kernel.schemas import schema_errors

#: How much of an answer that is no JSON at all an error quotes.
QUOTED_CHARS = 200


@dataclass(frozen=True)
class Reading:
    """One answer, read."""

    #: The JSON value the answer holds (repaired when `repaired`); None when it holds none.
    value: Any
    #: Each way `value` breaks the schema, as a person (or the model) should read it; empty
    #: when the answer is valid.
    errors: list[str]
    #: The answer was not JSON, and `json_repair` made it JSON.
    repaired: bool = False

    @property
    def valid(self) -> bool:
        return not self.errors


def read_structured(text: str, data: dict[str, Any] | None, schema: dict[str, Any]) -> Reading:
    """The answer as a JSON value, and how it breaks `schema`.

    Args:
        text: The answer's text (the JSON itself, with OpenAI's structured output).
        data: The arguments of Anthropic's forced tool call, when the answer came as one:
            already a value, so there is nothing to repair.
        schema: The call's `output_schema`.
    """
    if data is not None:
        return Reading(data, _errors(schema, data))
    try:
        return Reading(value := json.loads(text), _errors(schema, value))
    except ValueError:
        pass
    # `repair_json` makes "" of text with no JSON in it, which no schema worth asking for
    # admits: say it is not JSON rather than that "" is not an object.
    repaired = repair_json(text, return_objects=True)
    if repaired == "":
        return Reading(None, [f"the answer is not JSON: {text[:QUOTED_CHARS]!r}"], repaired=True)
    return Reading(repaired, _errors(schema, repaired), repaired=True)


def _errors(schema: dict[str, Any], value: Any) -> list[str]:
    return [f"{error.message} (at {error.json_path})" for error in schema_errors(schema, value)]
