"""`/openapi.json` (what `/docs` shows) documents the real request bodies, and never the
operator-only `engine` options the gateway adds to a run."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.app import create_app
from settings import Settings
from workflows.instructions.models import InstructionRunRequest

REF = "#/components/schemas/"


@pytest.fixture
async def openapi() -> dict[str, Any]:
    # The schema needs no Temporal: the lifespan (which connects) does not run here.
    settings = Settings(_env_file=None, gateway_allowed_hosts=["gateway"])  # type: ignore[call-arg]
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def request_body(openapi: dict[str, Any], path: str) -> dict[str, Any]:
    body = openapi["paths"][path]["post"]["requestBody"]
    assert body["required"] is True
    return body["content"]["application/json"]


def reachable(openapi: dict[str, Any], schema: Any) -> dict[str, Any]:
    """Every component schema `schema` refers to, directly or not, by name."""
    found: dict[str, Any] = {}
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.removeprefix(REF) not in found:
                name = ref.removeprefix(REF)
                found[name] = openapi["components"]["schemas"][name]
                pending.append(found[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


async def test_request_bodies_are_the_request_models(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    assert request_body(openapi, "/execute")["schema"] == {"$ref": REF + "PipelineRequest"}
    assert list(schemas["PipelineRequest"]["properties"]) == [
        "workflow_id",
        "namespace",
        "original_input",
        "input_data",
        "STEPS_CONFIG",
        "PIPELINE_SETTINGS",
        "description",
        "$schema",
    ]
    assert request_body(openapi, "/")["schema"] == {"$ref": REF + "InstructionRunRequest"}
    assert list(schemas["InstructionRunRequest"]["properties"]) == [
        "context",
        "instructions",
        "provider",
        "model",
        "executionMode",
    ]
    assert request_body(openapi, "/batch")["schema"] == {"$ref": REF + "InstructionBatch"}
    workflows = schemas["InstructionBatch"]["properties"]["workflows"]
    assert workflows["items"] == {"$ref": REF + "InstructionRunRequest"}
    assert (workflows["minItems"], workflows["maxItems"]) == (1, 20)
    # Every kind of instruction is documented, with its fields.
    instruction_kinds = set(reachable(openapi, schemas["InstructionRunRequest"]))
    assert {
        "LlmInstruction",
        "ConditionInstruction",
        "EndpointInstruction",
        "ThreadInstruction",
        "RouterInstruction",
    } <= instruction_kinds


async def test_no_request_schema_has_the_engine_options(openapi: dict[str, Any]) -> None:
    for path in ("/execute", "/", "/batch"):
        schema = request_body(openapi, path)["schema"]
        for name, component in reachable(openapi, schema).items():
            assert "engine" not in component.get("properties", {}), (path, name)
            assert "EngineOptions" not in name, (path, name)


async def test_the_documented_examples_are_valid_requests(openapi: dict[str, Any]) -> None:
    for example in request_body(openapi, "/")["examples"].values():
        InstructionRunRequest.model_validate(example["value"])
    for example in request_body(openapi, "/batch")["examples"].values():
        for run in example["value"]["workflows"]:
            InstructionRunRequest.model_validate(run)
