"""Endpoint workers: where a call goes, and the seed's proxy request/response format.

In the seed, three Cloudflare workers (`endpoint-1..3`) made external calls. Here each name
is a Temporal task queue served by `worker.py --endpoint NAME`, so egress can be scaled,
isolated and placed on its own. `resolve_endpoint` is pure so the workflows and the gateway
agree on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from activities.http.models import HTTP_METHODS, HttpCall, headers_as_text, is_http_url
from kernel.errors import ErrorType, WorkflowStationError

#: The endpoint-worker format caps `timeout` and `retryDelay` (milliseconds) at an hour.
MAX_MS = 3_600_000


class UnknownEndpoint(WorkflowStationError, ValueError):
    """An endpoint name that is no configured endpoint worker."""

    error_type = ErrorType.UNKNOWN_ENDPOINT


@dataclass(frozen=True)
class EndpointRoute:
    """`default`: the main worker calls; `worker`: that endpoint worker's task queue calls;
    `proxy`: an external service that speaks the seed's request format is called."""

    kind: Literal["default", "worker", "proxy"]
    task_queue: str | None = None
    proxy_url: str | None = None


def resolve_endpoint(endpoint_url: str | None, workers: Sequence[str]) -> EndpointRoute:
    """Map an instruction's `endpointUrl` (or a DAG step's `endpoint`) to a route.

    A bare configured name (`endpoint-2`) or a URL whose host's first label is one
    (`https://endpoint-2.workers.dev`, as seed clients send) selects that worker; any other
    URL is an external proxy; nothing selects the default worker.
    """
    value = (endpoint_url or "").strip()
    if not value:
        return EndpointRoute("default")
    if value in workers:
        return EndpointRoute("worker", task_queue=value)
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.hostname:
        label = parts.hostname.split(".")[0]
        if label in workers:
            return EndpointRoute("worker", task_queue=label)
        return EndpointRoute("proxy", proxy_url=value)
    configured = ", ".join(workers) or "none"
    raise UnknownEndpoint(
        f"endpoint {value!r} is neither a configured endpoint worker ({configured}) nor an"
        " http(s) URL"
    )


class EndpointRequest(BaseModel):
    """The seed's endpoint-worker request (`retryDelay` and `timeout` in milliseconds)."""

    model_config = ConfigDict(populate_by_name=True)

    url: str = Field(
        description="The http(s) URL called.",
        examples=["http://127.0.0.1:8001/articles/temporal"],
    )
    method: str = Field(default="GET", description="The HTTP method, any case.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers.")
    body: Any = Field(default=None, description="The request body, any JSON value (not with GET).")
    retries: int = Field(
        default=3,
        ge=0,
        le=20,
        description=(
            "Retries after the first attempt, for 5xx, 408, 429 and network errors; another"
            " 4xx comes back at once with `success: false`."
        ),
    )
    retry_delay: int = Field(
        default=1000,
        alias="retryDelay",
        ge=1,
        le=MAX_MS,
        description="Milliseconds before the first retry, doubling; at most an hour.",
    )
    timeout: int = Field(
        default=30000,
        ge=1,
        le=MAX_MS,
        description="Milliseconds one attempt may take; at most an hour.",
    )

    _headers_as_text = field_validator("headers", mode="before")(headers_as_text)

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.upper()
            if value not in HTTP_METHODS:
                raise ValueError(f"method {value!r} is not one of {', '.join(HTTP_METHODS)}")
        return value

    def budget_seconds(self) -> float:
        """The longest every attempt, with the doubling delays between them, can take."""
        delays: int = sum(self.retry_delay * 2**n for n in range(self.retries))
        return ((self.retries + 1) * self.timeout + delays) / 1000

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not is_http_url(value):
            raise ValueError(f"url {value!r} is not an http(s) URL")
        return value


def http_call(
    method: str,
    url: str,
    headers: dict[str, str],
    body: Any,
    timeout_ms: int,
    *,
    label: str,
    fail_on_client_error: bool = True,
    secret_names: Sequence[str] = (),
    tenant: str | None = None,
) -> HttpCall:
    """A call in the seed's endpoint format as an `HttpCall`: the body goes with any method
    but GET, `timeout_ms` bounds each attempt, and the activity fills in the `secret_names`
    (`templating.secret_names` of the call's templates) from `tenant`'s secrets."""
    return HttpCall(
        method=method,
        url=url,
        headers=headers,
        body=body,
        send_body=body is not None and method != "GET",
        timeout_seconds=timeout_ms / 1000,
        fail_on_client_error=fail_on_client_error,
        label=label,
        secret_names=list(secret_names),
        tenant=tenant,
    )


class EndpointResponse(BaseModel):
    """The seed's endpoint-worker response, plus `error` when the call failed."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    success: bool
    status: int | None = None
    status_text: str = Field(default="", alias="statusText")
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    attempts: int = 1
    duration: int = 0
    error: str | None = None
    #: The endpoint worker (task queue) that made the call.
    endpoint: str | None = None
