"""Strict payload models: an unknown key is a typo, refused with the path at fault and, when a
known key is close, the key meant (`STEPS_CONFIG[2].timout: unknown field; did you mean
'timeout'?`).

Two kinds of key are let through for annotations and dropped before validation: keys starting
with `x-` anywhere, and `"$schema"` (the editor's pointer at the JSON Schema) at the top of a
document. The JSON Schemas generated from these models say the same
(`additionalProperties: false`, `patternProperties` for `x-`), so an editor refuses what the
gateway refuses.

Strictness is for what users send. A workflow input is decoded by the worker with the same
models, and one recorded by older code may carry a key these models no longer know:
`known_fields_only` drops such keys before validation, so the input still decodes and replays.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, ClassVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, model_validator

#: Keys starting with this are annotations, anywhere in a payload: accepted and dropped.
ANNOTATION_PREFIX = "x-"

#: The key a document names its JSON Schema with (`"$schema": "../schemas/…"`).
SCHEMA_KEY = "$schema"


def _annotations_in_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """What the models accept beyond their fields, said in their JSON Schema."""
    schema["patternProperties"] = {
        f"^{ANNOTATION_PREFIX}": {"description": "An annotation, ignored."}
    }
    if getattr(model, "document_root", False):
        schema.setdefault("properties", {})[SCHEMA_KEY] = {
            "type": "string",
            "description": "The JSON Schema this document follows (for editors), ignored.",
        }


def _is_annotation(key: object, document_root: bool) -> bool:
    return isinstance(key, str) and (
        key.startswith(ANNOTATION_PREFIX) or (document_root and key == SCHEMA_KEY)
    )


def without_annotations(data: Any, *, document_root: bool) -> Any:
    """`data` without its `x-` keys, and without `$schema` when it is a document's top."""
    if not isinstance(data, dict) or not any(_is_annotation(key, document_root) for key in data):
        return data
    return {key: value for key, value in data.items() if not _is_annotation(key, document_root)}


class StrictPayload(BaseModel):
    """Base of every model of a payload users write: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_annotations_in_schema)

    #: The model is a whole document (a file an editor opens), which may name its schema.
    document_root: ClassVar[bool] = False

    @model_validator(mode="before")
    @classmethod
    def _drop_annotations(cls, data: Any) -> Any:
        return without_annotations(data, document_root=cls.document_root)


def _payload_model_in(annotation: Any) -> type[BaseModel] | None:
    """The strict payload model a field holds, directly or in a list or an optional.

    Only strict models: the others ignore unknown keys themselves. Never inside a mapping,
    whose keys are data (a run's steps by name), not fields.
    """
    if isinstance(annotation, type) and issubclass(annotation, StrictPayload):
        return annotation
    if get_origin(annotation) in (dict, Mapping):
        return None
    for argument in get_args(annotation):
        model = _payload_model_in(argument)
        if model is not None:
            return model
    return None


def _field_keys(model: type[BaseModel]) -> dict[str, str]:
    """Every key a model reads (its field names and their aliases), to the field's name."""
    keys = {}
    for name, field in model.model_fields.items():
        keys[name] = name
        if field.alias:
            keys[field.alias] = name
    return keys


@cache
def _readers(model: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    """Every key a model reads, to the model its value holds (None: a plain value); cached,
    as a 10,000-step input asks it once a step."""
    return {
        key: _payload_model_in(model.model_fields[name].annotation)
        for key, name in _field_keys(model).items()
    }


def known_fields_only(model: type[BaseModel], data: Any) -> Any:
    """`data` with only the keys `model` (and the models it holds) read, recursively."""
    if isinstance(data, list):
        return [known_fields_only(model, item) for item in data]
    if not isinstance(data, dict):
        return data
    readers = _readers(model)
    kept = {}
    for key, value in data.items():
        if key not in readers:
            continue
        nested = readers[key]
        kept[key] = value if nested is None else known_fields_only(nested, value)
    return kept


def dotted_path(loc: Sequence[str | int]) -> str:
    """A location as a user writes it: `STEPS_CONFIG[2].timout`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        keys = _field_keys(model)
        if part not in keys:
            return None
        model = _payload_model_in(model.model_fields[keys[part]].annotation)
    return model


def unknown_field_message(root: type[BaseModel], loc: Sequence[str | int]) -> str:
    """The message for an unknown key at `loc` of a `root` payload, with the closest known key.

    `loc` is pydantic's location of the error (the unknown key last).
    """
    message = f"{dotted_path(loc)}: unknown field"
    model = _model_at(root, loc[:-1])
    key = loc[-1] if loc else None
    if model is None or not isinstance(key, str):
        return message
    close = difflib.get_close_matches(key, list(_field_keys(model)), n=1, cutoff=0.6)
    return f"{message}; did you mean '{close[0]}'?" if close else message
