"""The seed's endpoint-worker proxy API: `POST /endpoints/{name}`."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import TimeoutError

from gateway.deps import RunSlotsDep, SettingsDep, TemporalClientDep
from gateway.errors import EndpointFailed, EndpointTimedOut, NotFound
from gateway.starts import search_attributes
from gateway.tenancy import TenantDep
from kernel.redact import redact_url
from workflows.endpoint.models import EndpointCallInput
from workflows.endpoint.workflow import EndpointCallWorkflow
from workflows.shared.endpoints import EndpointRequest, EndpointResponse

router = APIRouter(prefix="/endpoints", tags=["endpoints"])


@router.post("/{name}", response_model=EndpointResponse, response_model_by_alias=True)
async def call_endpoint(
    name: str,
    request: EndpointRequest,
    client: TemporalClientDep,
    settings: SettingsDep,
    tenant: TenantDep,
    slots: RunSlotsDep,
) -> EndpointResponse:
    """Make one HTTP call through endpoint worker `name`, with the seed's retry semantics.

    The call runs as a short workflow on that worker's task queue, visible in the Web UI.
    A failed call is still a 200 whose body says `success: false`, as the seed workers did.
    """
    if name not in settings.endpoint_workers:
        raise NotFound(
            f"no endpoint worker named {name!r}; configured: "
            + ", ".join(settings.endpoint_workers),
        )
    workflow_id = f"endpoint-{name}-{uuid.uuid4().hex}"
    temporal_id = tenant.workflow_id(workflow_id)
    # Bounded, so a queue that no endpoint worker polls answers instead of hanging, and so a
    # call's retries cannot keep a run (and the tenant's slot) for longer than the operator
    # allows.
    timeout = min(
        request.budget_seconds() + settings.endpoint_pickup_timeout_seconds,
        settings.endpoint_run_max_seconds,
    )
    async with slots.starting(tenant, [temporal_id]):
        handle = await client.start_workflow(
            EndpointCallWorkflow.run,
            EndpointCallInput(request=request, endpoint=name),
            id=temporal_id,
            task_queue=name,
            execution_timeout=timedelta(seconds=timeout),
            search_attributes=search_attributes("endpoint", name, workflow_id, tenant),
            static_summary=f"{request.method} {redact_url(request.url)} via {name}",
        )
    try:
        return await handle.result()
    except WorkflowFailureError as exc:
        if isinstance(exc.cause, TimeoutError):
            raise EndpointTimedOut(
                f"endpoint worker {name!r} did not finish the call within {timeout:g}s"
                " (its retries' budget, else ENDPOINT_RUN_MAX_SECONDS); is a worker polling"
                f" its queue (worker.py --endpoint {name})?",
            ) from exc
        raise EndpointFailed(f"endpoint call {workflow_id} failed: {exc.cause}") from exc
    finally:
        await slots.release(tenant, [temporal_id])
