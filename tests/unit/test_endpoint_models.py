"""Endpoint routing and the seed's proxy request format: pure logic."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workflows.shared.endpoints import (
    EndpointRequest,
    EndpointResponse,
    EndpointRoute,
    UnknownEndpoint,
    resolve_endpoint,
)

WORKERS = ["endpoint-1", "endpoint-2", "endpoint-3"]


@pytest.mark.parametrize(
    ("endpoint_url", "route"),
    [
        (None, EndpointRoute("default")),
        ("", EndpointRoute("default")),
        ("endpoint-2", EndpointRoute("worker", task_queue="endpoint-2")),
        ("https://endpoint-2.workers.dev", EndpointRoute("worker", task_queue="endpoint-2")),
        (
            "https://endpoint-3.acme.workers.dev/call",
            EndpointRoute("worker", task_queue="endpoint-3"),
        ),
        ("http://endpoint-1:8787", EndpointRoute("worker", task_queue="endpoint-1")),
        (
            "https://proxy.example.com/call",
            EndpointRoute("proxy", proxy_url="https://proxy.example.com/call"),
        ),
        (
            "https://endpoint-9.workers.dev",
            EndpointRoute("proxy", proxy_url="https://endpoint-9.workers.dev"),
        ),
    ],
)
def test_resolve_endpoint(endpoint_url: str | None, route: EndpointRoute) -> None:
    assert resolve_endpoint(endpoint_url, WORKERS) == route


def test_unknown_bare_name_is_an_error_that_lists_the_workers() -> None:
    with pytest.raises(UnknownEndpoint, match="endpoint-1, endpoint-2, endpoint-3"):
        resolve_endpoint("endpoint-7", WORKERS)


def test_request_defaults_and_seed_field_names() -> None:
    request = EndpointRequest.model_validate({"url": "https://api.example.com/x", "retryDelay": 50})
    assert (request.method, request.retries, request.retry_delay, request.timeout) == (
        "GET",
        3,
        50,
        30000,
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("url", "ftp://x", "not an http(s) URL"),
        ("method", "FETCH", "is not one of GET, POST"),
        ("retries", -1, "greater than or equal to 0"),
        ("timeout", 0, "greater than or equal to 1"),
    ],
)
def test_invalid_request_names_the_field(field: str, value: object, message: str) -> None:
    data = {"url": "https://api.example.com/x", field: value}
    with pytest.raises(ValidationError) as info:
        EndpointRequest.model_validate(data)
    error = info.value.errors()[0]
    assert error["loc"] == (field,)
    assert message in error["msg"]


def test_response_uses_the_seed_field_names() -> None:
    response = EndpointResponse(success=True, status=200, statusText="OK", duration=5)
    dumped = response.model_dump()
    assert dumped["statusText"] == "OK"
    assert set(dumped) >= {
        "success",
        "status",
        "statusText",
        "headers",
        "body",
        "attempts",
        "duration",
    }
