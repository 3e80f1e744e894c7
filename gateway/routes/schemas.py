"""`GET /schemas/{name}`: the JSON Schemas of the payloads, for editors and clients.

The committed files in `schemas/` are served as they are (`docs/generate.py` writes them from
the models, and a test fails when they drift), so what an editor fetches from a gateway is
what the repository holds. No API key: they describe the payload formats, which the open
`/openapi.json` documents as well, and hold nothing of any tenant.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.errors import NotFound

router = APIRouter(tags=["schemas"])

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"

#: The schemas served, by the name in the route.
SCHEMA_NAMES = ("pipeline", "instructions")


@cache
def committed_schema(name: str) -> dict[str, Any]:
    """The schema `schemas/<name>.schema.json` holds."""
    schema: dict[str, Any] = json.loads((SCHEMAS_DIR / f"{name}.schema.json").read_text())
    return schema


@router.get(
    "/schemas/{name}",
    response_class=JSONResponse,
    responses={
        200: {"description": "the JSON Schema", "content": {"application/schema+json": {}}},
        404: {"description": "no schema by that name"},
    },
)
async def get_schema(name: str) -> JSONResponse:
    """The JSON Schema of a payload: `pipeline` (`POST /execute`) or `instructions` (`POST /`)."""
    if name not in SCHEMA_NAMES:
        raise NotFound(f"no schema {name!r}; there are 'pipeline' and 'instructions'")
    return JSONResponse(committed_schema(name), media_type="application/schema+json")
