"""`GET /runs`: a tenant's runs of both engines, from Temporal's visibility store."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowExecutionStatus

from gateway.tenancy import Tenant
from kernel.search import ENGINE, TENANT
from workflows.shared.usage_memo import USAGE_MEMO

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


class ListedUsage(BaseModel):
    """What an ended run's LLM calls spent (`workflows.shared.usage_memo`)."""

    input_tokens: int = 0
    output_tokens: int = 0
    #: USD, of the calls whose model has a price; None when none had one.
    cost_usd: float | None = None
    unpriced_models: list[str] = Field(default_factory=list)


class RunSummary(BaseModel):
    """One run as `GET /runs` lists it; `GET /runs/{workflow_id}` has the rest."""

    workflow_id: str
    run_id: str
    engine: str
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: An ended run that called a model: its tokens and cost (running runs: see their status).
    usage: ListedUsage | None = None


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
        usage = (await execution.memo()).get(USAGE_MEMO)
        runs.append(
            RunSummary(
                workflow_id=tenant.client_id(execution.id),
                run_id=execution.run_id,
                engine=engine,
                status=listed_state(execution.status),
                started_at=execution.start_time,
                finished_at=execution.close_time,
                usage=ListedUsage.model_validate(usage) if isinstance(usage, dict) else None,
            )
        )
    return runs
