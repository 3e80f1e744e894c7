"""A person's word to a running pipeline: `POST /runs/{id}/steps/{step}/approve`,
`POST /runs/{id}/pause` and `POST /runs/{id}/resume` (`gateway.runs.control`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.deps import RunStatusDep
from gateway.runs.control import approve_step, set_paused
from gateway.runs.instructions import InstructionRunView
from workflows.dag.models import DagRunResult
from workflows.shared.approvals import ApprovalDecision

router = APIRouter(tags=["runs"])

ENDED: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such pipeline run"},
    409: {"description": "the run has ended"},
}


@router.post(
    "/runs/{workflow_id:path}/steps/{step_name:path}/approve",
    responses={
        200: {"description": "the step's decision: `{decision, comment, data, by, at}`"},
        404: ENDED[404],
        409: {"description": "the run has ended, or the step is not waiting for an approval"},
        422: {"description": "`data` does not match the step's `schema`"},
    },
)
async def approve(
    workflow_id: str, step_name: str, decision: ApprovalDecision, runs: RunStatusDep
) -> dict[str, Any]:
    """Approve or reject a waiting `approval` step. Approved, the decision is the step's
    result (`{{<step>_result.data.field}}` for later steps); rejected, the step fails
    (`Rejected`) and its dependents are aborted. Lands while the run is paused too."""
    return await approve_step(runs, workflow_id, step_name, decision)


@router.post(
    "/runs/{workflow_id:path}/pause",
    response_model=DagRunResult | InstructionRunView,
    responses=ENDED,
)
async def pause(workflow_id: str, runs: RunStatusDep) -> DagRunResult | InstructionRunView:
    """Pause a run of either engine: it starts no new step (running ones finish), its status
    is `paused`, its events (and a pipeline's webhook) say `workflow.paused`. Approvals and
    cancels still land."""
    return await set_paused(runs, workflow_id, paused=True)


@router.post(
    "/runs/{workflow_id:path}/resume",
    response_model=DagRunResult | InstructionRunView,
    responses=ENDED,
)
async def resume(workflow_id: str, runs: RunStatusDep) -> DagRunResult | InstructionRunView:
    """Resume a paused run where it stood (`workflow.resumed`)."""
    return await set_paused(runs, workflow_id, paused=False)
