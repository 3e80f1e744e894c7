"""What the gateway refuses or cannot answer, as exceptions its services raise, and the one
handler (`answer_gateway_error`, registered by `gateway.app.create_app`) that turns them into
responses.

Services and dependencies raise these, never `fastapi.HTTPException`, so they read as what
went wrong and can be called outside a request. Every one answers `{"detail": "<message>"}`
with its status code (and headers, such as `Retry-After`), as FastAPI answers an
`HTTPException`:

    GatewayError
    ├── NotAuthenticated ......... 401  no valid credential
    ├── Forbidden ................ 403  the route is off for this gateway
    ├── NotFound ................. 404  nothing by that name
    │   ├── RunNotFound .......... 404  no such run, or not a run of the kind asked for
    │   └── ScheduleNotFound ..... 404  no such schedule (for this tenant)
    ├── RunConflict .............. 409  the run (or event) is not in a state that allows it
    │   └── ScheduleExists ....... 409  the tenant has a schedule by that id
    ├── ValueExpired ............. 410  a stored value outlived OUTPUT_TTL_SECONDS
    ├── InvalidRequest ........... 422  a parameter, header or payload the route cannot take
    ├── LimitExceeded ............ 429  a tenant's request rate or running runs
    ├── EndpointFailed ........... 502  an endpoint worker's call failed
    ├── WorkerUnavailable ........ 503  no worker answered for a running run
    └── EndpointTimedOut ......... 504  no endpoint worker finished the call in time

A request body that does not validate is FastAPI's `RequestValidationError` (422, its own
handler, whose `detail` `validation_detail` writes); Temporal out of reach is an `RPCError`
(503, its own handler).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from workflows.shared.payloads import unknown_field_message


class GatewayError(Exception):
    """Base of the gateway's errors: `detail` is the message the client reads.

    Args:
        detail: what went wrong, naming the run, step or field at fault.
        headers: response headers to send with it (`Retry-After`, `WWW-Authenticate`).
    """

    status_code: ClassVar[int] = 500

    def __init__(self, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers) if headers is not None else None


class NotAuthenticated(GatewayError):
    status_code = 401


class Forbidden(GatewayError):
    status_code = 403


class NotFound(GatewayError):
    status_code = 404


class RunNotFound(NotFound):
    """No run by that id for this tenant, or one that is not of the kind the route serves."""


class ScheduleNotFound(NotFound):
    """No schedule by that id for this tenant."""


class RunConflict(GatewayError):
    status_code = 409


class ScheduleExists(RunConflict):
    """The tenant has a schedule by that id already."""


class ValueExpired(GatewayError):
    status_code = 410


class InvalidRequest(GatewayError):
    status_code = 422


class LimitExceeded(GatewayError):
    status_code = 429


class EndpointFailed(GatewayError):
    status_code = 502


class WorkerUnavailable(GatewayError):
    status_code = 503


class EndpointTimedOut(GatewayError):
    status_code = 504


async def answer_gateway_error(request: Request, exc: Exception) -> JSONResponse:
    """The response a `GatewayError` stands for: the same status, body and headers an
    `HTTPException` with its status code and detail would get."""
    if not isinstance(exc, GatewayError):
        raise exc
    return JSONResponse(
        status_code=exc.status_code, content={"detail": exc.detail}, headers=exc.headers
    )


def validation_detail(
    errors: Iterable[Mapping[str, Any]], body: type[BaseModel] | None
) -> list[dict[str, Any]]:
    """FastAPI's 422 `detail` (`loc`, `msg`, `type` of each error), an unknown key in the body
    named by its path with the key meant when `body`, the body's model, has a close one."""
    detail = []
    for error in errors:
        problem = {key: error[key] for key in ("loc", "msg", "type") if key in error}
        loc = tuple(error.get("loc", ()))
        if body is not None and error.get("type") == "extra_forbidden" and loc[:1] == ("body",):
            problem["msg"] = unknown_field_message(body, loc[1:])
        detail.append(problem)
    return detail
