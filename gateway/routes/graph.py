"""`GET /runs/{workflow_id}/graph`: the shape of a run, which the run page draws
(`gateway.runs.graph`)."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.deps import RunStatusDep
from gateway.runs.graph import RunGraph, run_graph

router = APIRouter(tags=["runs"])


# Included before `gateway.routes.runs`, whose `GET /runs/{workflow_id:path}` would take this
# path for an id.
@router.get(
    "/runs/{workflow_id:path}/graph",
    response_model=RunGraph,
    responses={404: {"description": "no such run"}},
)
async def get_run_graph(workflow_id: str, runs: RunStatusDep) -> RunGraph:
    """A run's steps and what each waits for (a DAG run's levels and dependencies, an
    instruction run's queue and its conditions' jumps), from the input it was started with."""
    return await run_graph(runs, workflow_id)
