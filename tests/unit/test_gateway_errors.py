"""`gateway.errors`: every error the services raise answers exactly as the `HTTPException`
with its status code and detail did (status, JSON body, headers)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, HTTPException

from gateway import errors
from gateway.errors import GatewayError, answer_gateway_error

ERRORS = [
    cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, GatewayError) and cls is not GatewayError
]


def app_raising(exc: Exception) -> FastAPI:
    app = FastAPI()
    app.add_exception_handler(GatewayError, answer_gateway_error)

    @app.get("/")
    async def fail() -> None:
        raise exc

    return app


async def answer(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.get("/")


@pytest.mark.parametrize("error", ERRORS, ids=lambda cls: cls.__name__)
async def test_answers_as_the_http_exception_did(error: type[GatewayError]) -> None:
    detail = f"run 'r-1' says {error.__name__}"
    headers = {"Retry-After": "5"}
    ours = await answer(app_raising(error(detail, headers=headers)))
    theirs = await answer(app_raising(HTTPException(error.status_code, detail, headers=headers)))
    assert ours.status_code == theirs.status_code == error.status_code
    assert ours.json() == theirs.json() == {"detail": detail}
    assert ours.headers == theirs.headers


def test_every_error_names_a_client_or_upstream_status() -> None:
    assert {cls.status_code for cls in ERRORS} == {401, 403, 404, 409, 410, 422, 429, 502, 503, 504}
