"""Checking a value against a user's JSON Schema (an `llm` step's `output_schema`, an
approval's `schema`), once for every caller: the schema's own draft, and the one error a
person should read first."""

from __future__ import annotations

from typing import Any

from jsonschema import validators
from jsonschema.exceptions import ValidationError, best_match, relevance


def schema_error(schema: dict[str, Any], value: Any) -> ValidationError | None:
    """The most relevant way `value` breaks `schema` (by the draft the schema names), or None
    when it is valid."""
    error: ValidationError | None = best_match(
        validators.validator_for(schema)(schema).iter_errors(value)
    )
    return error


def schema_errors(schema: dict[str, Any], value: Any, limit: int = 5) -> list[ValidationError]:
    """Up to `limit` ways `value` breaks `schema`, the most relevant first; empty when it is
    valid. For a message that must name every fault at once (a model asked to correct its
    answer fixes what it is told about)."""
    found = validators.validator_for(schema)(schema).iter_errors(value)
    return sorted(found, key=relevance, reverse=True)[:limit]
