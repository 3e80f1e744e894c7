"""A run's webhook events: `POST /runs/{workflow_id}/webhooks/redeliver` (every failed
event) and `POST /runs/{workflow_id}/webhooks/{event_id}/redeliver` (one)."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from gateway.deps import RunStatusDep
from gateway.errors import NotFound, RunConflict
from gateway.runs.service import RunStatusService
from gateway.webhooks import OutboxUnavailable, redeliver
from workflows.dag.models import DagRunResult
from workflows.shared.webhooks import RedeliveryResult

router = APIRouter(tags=["webhooks"])


class RedeliveryRequest(BaseModel):
    """Which failed events to deliver again; none named: every failed event."""

    event_ids: list[str] | None = Field(default=None, min_length=1, max_length=1000)


class Redelivering(RedeliveryResult):
    """What was queued again; `unknown` and `not_failed` name what was not, and why."""

    workflow_id: str
    outbox_id: str


async def _redeliver(
    runs: RunStatusService, workflow_id: str, event_ids: list[str] | None
) -> Redelivering:
    run = await runs.status(workflow_id)
    outbox_id = run.webhooks.outbox_id if isinstance(run, DagRunResult) else None
    if outbox_id is None:
        raise NotFound(f"run {workflow_id!r} has no webhook outbox")
    try:
        result = await redeliver(runs, outbox_id, event_ids)
    except OutboxUnavailable as exc:
        raise RunConflict(f"run {workflow_id!r}: {exc}") from exc
    return Redelivering(workflow_id=workflow_id, outbox_id=outbox_id, **dict(result))


@router.post(
    "/runs/{workflow_id:path}/webhooks/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: {"description": "no such run, or a run without webhooks"}},
)
async def redeliver_failed(
    workflow_id: str, runs: RunStatusDep, request: RedeliveryRequest | None = None
) -> Redelivering:
    """Deliver the run's failed webhook events again (all, or `event_ids`), in their order,
    after any still queued; each keeps its `event_id` and gets a new delivery window."""
    return await _redeliver(runs, workflow_id, request.event_ids if request else None)


@router.post(
    "/runs/{workflow_id:path}/webhooks/{event_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: {"description": "no such run or event"},
        409: {"description": "the event is not failed"},
    },
)
async def redeliver_event(workflow_id: str, event_id: str, runs: RunStatusDep) -> Redelivering:
    """Deliver one failed webhook event again, with a new delivery window."""
    answer = await _redeliver(runs, workflow_id, [event_id])
    if answer.unknown:
        raise NotFound(f"run {workflow_id!r} has no webhook event {event_id!r}")
    if answer.not_failed:
        state = answer.not_failed[event_id]
        raise RunConflict(
            f"webhook event {event_id!r} is {state}: only failed events are redelivered"
        )
    return answer
