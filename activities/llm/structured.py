"""The validated value of an LLM step's answer, given the JSON Schema it must follow.

The one seam between a model's raw answer and the value later steps read as `json`: today it
parses and validates; a repair ladder (asking the model again with the error) would go here.
"""

from __future__ import annotations

import json
from typing import Any

from temporalio.exceptions import ApplicationError

from kernel import errors
from kernel.errors import ErrorType
from kernel.schemas import schema_error


def structured_answer(
    text: str, data: dict[str, Any] | None, schema: dict[str, Any], label: str
) -> Any:
    """The answer as a JSON value valid against `schema`.

    Args:
        text: The answer's text (the JSON itself, with OpenAI's structured output).
        data: The arguments of Anthropic's forced tool call, when the answer came as one.
        schema: The step's `output_schema`.
        label: Who asked, for the error message.

    Raises:
        ApplicationError: `InvalidModelOutput`, non-retryable: the model was already asked
            for this schema, and the same prompt would most likely answer the same way.
    """
    if data is not None:
        value: Any = data
    else:
        try:
            value = json.loads(text)
        except ValueError:
            raise _invalid(label, f"the answer is not JSON: {text[:200]!r}") from None
    error = schema_error(schema, value)
    if error is not None:
        raise _invalid(label, f"{error.message} (at {error.json_path})")
    return value


def _invalid(label: str, why: str) -> ApplicationError:
    who = f"{label}: " if label else ""
    return errors.non_retryable(
        ErrorType.INVALID_MODEL_OUTPUT,
        f"{who}the model's answer does not match output_schema: {why}",
    )
