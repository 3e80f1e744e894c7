"""Inputs and outputs of the HTTP and webhook activities, and their names.

I/O-free: workflows import this module (never `activities.http.activities`, which needs
httpx), so the workflow sandbox sees no HTTP client library.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

from activities.store.models import OutputTarget, ResultCaching, cache_key

#: Activity names, as workflows schedule them and `HttpActivities` registers them.
CALL_HTTP: Final = "call_http"
SEND_WEBHOOK: Final = "send_webhook"

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
#: The tenant of runs the open gateway starts (they name none): its secrets are the
#: unprefixed ones, and its webhook events say `"tenant": "default"`.
DEFAULT_TENANT: Final = "default"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"

#: The template root whose placeholders workflow code never resolves: `{{secrets.NAME}}` is
#: left as written and filled in by the HTTP activity, just before sending, from the worker's
#: own secrets (`activities.http.secrets`), so the value never enters history.
SECRETS_ROOT: Final = "secrets"
#: A secret's name: an ASCII identifier (it is also the tail of a `SECRET_<NAME>` variable).
SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: One `{{secrets.NAME}}` placeholder, spaces inside the braces allowed. Linear: nothing in it
#: can backtrack past a brace.
SECRET_PLACEHOLDER = re.compile(r"\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def secret_name(expression: str) -> str | None:
    """NAME for a placeholder expression `secrets.NAME` (spaces around allowed), else None."""
    root, dot, name = expression.strip().partition(".")
    if root == SECRETS_ROOT and dot and SECRET_NAME.fullmatch(name):
        return name
    return None


def is_http_url(value: str) -> bool:
    """True for an absolute http(s) URL with a host."""
    parts = urlsplit(value.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def idempotency_key(run_id: str, step: str) -> str:
    """A key stable across every attempt of one step of one run, so a target can drop what a
    crash made us send twice; a UUID, so any step name fits in a header."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"workflow-station:{run_id}/{step}"))


def with_idempotency_key(headers: dict[str, str], key: str) -> dict[str, str]:
    """`headers` with an `Idempotency-Key`, unless the caller set one (in any case)."""
    if any(name.lower() == IDEMPOTENCY_KEY_HEADER.lower() for name in headers):
        return headers
    return {**headers, IDEMPOTENCY_KEY_HEADER: key}


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
    #: The `{{secrets.NAME}}` the call's own configuration names: the activity fills in these
    #: and no others, so a placeholder that arrives inside data (a previous step's response,
    #: an LLM's answer) is sent as it is instead of being resolved.
    secret_names: list[str] = Field(default_factory=list)
    #: A DAG step's outputs, written to Redis by the activity once the call succeeded.
    outputs: OutputTarget | None = None
    #: Whose run makes the call: only that tenant's secrets (and shared ones) are filled in.
    #: None: the open gateway's runs, and runs recorded before secrets had tenants; both use
    #: the default tenant's (`activities.http.secrets`).
    tenant: str | None = None
    #: Answer from the tenant's result cache when the same request was made within its TTL.
    #: None (calls recorded before caching too): every attempt sends the request.
    cache: ResultCaching | None = None

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
    #: The Redis keys of `HttpCall.outputs` the activity wrote (none: the caller writes them).
    stored: list[str] = Field(default_factory=list)
    #: Taken from the result cache (`HttpCall.cache`), made that long ago: no request was sent.
    cached: bool = False
    cache_age_seconds: float | None = None
    #: The call's result-cache key (`http_cache_key`), cached or not: a rerun compares it.
    request_key: str | None = None


class WebhookDelivery(BaseModel):
    """One webhook event to POST; `event["event_id"]` is its `webhook-id` and
    `Idempotency-Key`, the same on every attempt and every redelivery."""

    url: str
    event: dict[str, Any]
    #: Whose run emitted it: the body names it (`tenant`), signed with its own secret when it
    #: has one. None: the open gateway's runs, and outboxes from before this field.
    tenant: str | None = None


class WebhookReceipt(BaseModel):
    """A delivered event: the receiver's status and the attempt that got through."""

    status: int
    attempt: int = 1


#: Headers (lower-cased) that differ between identical requests without changing the answer.
UNKEYED_HEADERS = frozenset(
    {IDEMPOTENCY_KEY_HEADER.lower(), "traceparent", "tracestate", "baggage", "x-request-id"}
)


def http_cache_key(call: HttpCall) -> str:
    """The result-cache key of `call` as scheduled (`activities.http.cache`): its method, URL,
    query, body and headers, less those that never change the answer."""
    content = {
        "method": call.method.upper(),
        "url": call.url,
        "query": call.query,
        "body": call.body if call.send_body else None,
        "headers": {
            name.lower(): value
            for name, value in call.headers.items()
            if name.lower() not in UNKEYED_HEADERS
        },
    }
    return cache_key(call.tenant, "http", content)
