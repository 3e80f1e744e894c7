"""The input of `EndpointCallWorkflow`: one call in the seed's endpoint-worker format."""

from __future__ import annotations

from pydantic import BaseModel, Field

from workflows.shared.endpoints import EndpointRequest


class EndpointCallInput(BaseModel):
    """One call `POST /endpoints/{name}` hands to that endpoint worker's task queue."""

    request: EndpointRequest = Field(description="The call, in the endpoint-worker format.")
    endpoint: str = Field(
        description="The endpoint worker (task queue) that makes the call.",
        examples=["endpoint-1"],
    )
