"""`GET /runs`: a tenant's runs of both engines, from Temporal's visibility store."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus

from gateway.tenancy import Tenant
from kernel.search import ENGINE, TENANT

#: `GET /runs?status=`: the run states a list can be narrowed to, as Temporal's visibility
#: store names them.
LISTED_STATES: Mapping[str, str] = {
    "running": "Running",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Canceled",
    "terminated": "Terminated",
    "timed_out": "TimedOut",
}
#: Runs one list answers at most.
MAX_LISTED = 1000


class RunSummary(BaseModel):
    """One run as `GET /runs` lists it; `GET /runs/{workflow_id}` has the rest."""

    workflow_id: str
    run_id: str
    engine: str
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None


def listed_state(status: WorkflowExecutionStatus | None) -> str:
    """A run state in the list's words (`LISTED_STATES`)."""
    if status is None:
        return "unknown"
    if status == WorkflowExecutionStatus.CANCELED:
        return "cancelled"
    return status.name.lower()


async def list_runs(
    client: Client, tenant: Tenant, state: str | None, limit: int
) -> list[RunSummary]:
    """The tenant's DAG and instruction runs, newest first, in state `state` if given."""
    query = f"{TENANT.name} = '{tenant.name}' AND {ENGINE.name} IN ('dag', 'instructions')"
    if state is not None:
        query += f" AND ExecutionStatus = '{LISTED_STATES[state]}'"
    runs: list[RunSummary] = []
    async for execution in client.list_workflows(query, limit=limit):
        engine = execution.typed_search_attributes.get(ENGINE) or "unknown"
        runs.append(
            RunSummary(
                workflow_id=tenant.client_id(execution.id),
                run_id=execution.run_id,
                engine=engine,
                status=listed_state(execution.status),
                started_at=execution.start_time,
                finished_at=execution.close_time,
            )
        )
    return runs
