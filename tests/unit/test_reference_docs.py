"""The reference pages and JSON Schemas are what the models say (`make docs`), every setting
and payload field is described, and the bundled examples are valid against the schemas."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from settings import AREAS, Settings
from workflows.dag.models import PipelineRequest
from workflows.endpoint.models import EndpointCallInput
from workflows.instructions.models import InstructionRunRequest
from workflows.shared.endpoints import EndpointRequest

ROOT = Path(__file__).resolve().parents[2]


def load_generator() -> ModuleType:
    # By path: `docs` is a folder of pages, not a package.
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = load_generator()


def test_the_committed_reference_is_what_the_models_generate() -> None:
    stale = generate.stale(generate.generate())
    assert stale == [], f"{', '.join(stale)} differ from the models: run make docs"


def test_every_setting_is_described_in_exactly_one_area() -> None:
    owners: dict[str, list[str]] = {}
    for area in AREAS:
        for name in area.model_fields:
            owners.setdefault(name, []).append(area.__name__)
    assert set(owners) == set(Settings.model_fields)
    assert {name: areas for name, areas in owners.items() if len(areas) != 1} == {}
    undescribed = [
        name
        for name, field in Settings.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert undescribed == []


@pytest.mark.parametrize(
    "root", [PipelineRequest, InstructionRunRequest, EndpointCallInput, EndpointRequest]
)
def test_every_payload_field_is_described(root: type[BaseModel]) -> None:
    undescribed = [
        f"{model.__name__}.{name}"
        for model in generate.models_under(root)
        for name, field in model.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert undescribed == []


def payload_schema(payload: Any) -> str | None:
    """Which committed schema a bundled example's payload is an instance of, if any."""
    if isinstance(payload, dict) and "STEPS_CONFIG" in payload:
        return "pipeline"
    if isinstance(payload, dict) and "instructions" in payload:
        return "instructions"
    return None


def test_the_examples_are_valid_against_the_committed_schemas() -> None:
    checked: dict[str, list[str]] = {"pipeline": [], "instructions": []}
    for path in sorted((ROOT / "examples").glob("*.json")):
        payload = json.loads(path.read_text(encoding="utf-8"))
        kind = payload_schema(payload)
        if kind is None:
            continue
        schema = json.loads((ROOT / "schemas" / f"{kind}.schema.json").read_text("utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        errors = [
            f"{path.name} at {list(error.absolute_path)}: {error.message}"
            for error in jsonschema.Draft202012Validator(schema).iter_errors(payload)
        ]
        assert errors == []
        checked[kind].append(path.name)
    # Each schema was tried on at least one example: a renamed key cannot skip them all.
    assert all(checked.values()), checked


def test_a_schema_refuses_what_the_gateway_refuses() -> None:
    schema = json.loads((ROOT / "schemas" / "pipeline.schema.json").read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    assert not validator.is_valid({"workflow_id": "w", "STEPS_CONFIG": []})
    schema = json.loads((ROOT / "schemas" / "instructions.schema.json").read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"context": "c", "instructions": ["Summarize it"]})
    assert not validator.is_valid({"context": "c", "instructions": [{"type": "thread"}]})


def test_every_example_names_its_schema_first() -> None:
    for path in sorted((ROOT / "examples").glob("*.json")):
        payload = json.loads(path.read_text(encoding="utf-8"))
        kind = payload_schema(payload)
        if kind is None:
            continue
        assert next(iter(payload)) == "$schema", path.name
        assert (path.parent / payload["$schema"]).resolve() == ROOT / "schemas" / (
            f"{kind}.schema.json"
        )


def test_an_editor_refuses_a_typo_in_a_pipeline_and_takes_annotations() -> None:
    schema = json.loads((ROOT / "schemas" / "pipeline.schema.json").read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    step = {"step_name": "a", "usid": "a", "service_url": "http://127.0.0.1/a"}
    assert validator.is_valid({"workflow_id": "w", "STEPS_CONFIG": [step]})
    typos = [
        {"workflow_id": "w", "STEPS_CONFIG": [step | {"timout": 5}]},
        {"workflow_id": "w", "STEPS_CONFIG": [step | {"input_prep_config": {"bdoy": {}}}]},
        {"workflow_id": "w", "STEPS_CONFIG": [step], "PIPELINE_SETTINGS": {"timeout": {}}},
        {"workflow_id": "w", "steps_config": [step]},
    ]
    for typo in typos:
        assert not validator.is_valid(typo), typo
    annotated = {
        "$schema": "../schemas/pipeline.schema.json",
        "x-owner": "me",
        "description": "what it is for",
        "workflow_id": "w",
        "STEPS_CONFIG": [step | {"x-note": 1, "description": "the one step"}],
    }
    assert validator.is_valid(annotated)
    assert PipelineRequest.model_validate(annotated).STEPS_CONFIG[0].description == "the one step"
