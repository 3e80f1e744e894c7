"""The input of `EndpointCallWorkflow`: one call in the seed's endpoint-worker format."""

from __future__ import annotations

from pydantic import BaseModel

from workflows.shared.endpoints import EndpointRequest


class EndpointCallInput(BaseModel):
    request: EndpointRequest
    #: The endpoint worker (task queue) that makes the call.
    endpoint: str
