"""Checking a value against a user's JSON Schema (an `llm` step's `output_schema`, an
approval's `schema`), once for every caller: the schema's own draft, and the one error a
person should read first."""

from __future__ import annotations

from typing import Any

from jsonschema import validators
from jsonschema.exceptions import ValidationError, best_match


def schema_error(schema: dict[str, Any], value: Any) -> ValidationError | None:
    """The most relevant way `value` breaks `schema` (by the draft the schema names), or None
    when it is valid."""
    error: ValidationError | None = best_match(
        validators.validator_for(schema)(schema).iter_errors(value)
    )
    return error
