"""Inputs and outputs of the HTTP, webhook and store activities (one model in, one out)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, field_validator


def headers_as_text(cls: type, value: Any) -> Any:
    """A templated header may render to a number or an object: send it as JSON text."""
    if isinstance(value, dict):
        return {
            str(name): item if isinstance(item, str) else json.dumps(item)
            for name, item in value.items()
        }
    return value


class HttpCall(BaseModel):
    """One HTTP request, as a DAG step, an endpoint instruction or the proxy API makes it."""

    method: str = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, Any] = Field(default_factory=dict)
    body: Any = None
    send_body: bool = False
    #: Bounds one attempt; the activity's start-to-close timeout is set from it too.
    timeout_seconds: float = 45.0
    #: False: a 4xx response is returned as a result instead of failing (the proxy API).
    fail_on_client_error: bool = True
    #: Who is calling, for error messages ("step 'fetch'", "instruction 3").
    label: str = ""

    _headers_as_text = field_validator("headers", mode="before")(headers_as_text)


class HttpResult(BaseModel):
    status: int
    reason: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    is_json: bool = False
    url: str = ""
    attempt: int = 1
    duration_ms: int = 0


class WebhookDelivery(BaseModel):
    url: str
    event: dict[str, Any]


class SelectionRead(BaseModel):
    key: str


class OutputWrite(BaseModel):
    values: dict[str, Any]
    ttl_seconds: int
