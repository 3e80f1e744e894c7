"""`/schedules`: run a DAG pipeline when it is due, on a cron expression or an interval
(`gateway.schedules`). Its runs are read like any other, through `/runs`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.responses import JSONResponse

from gateway.deps import SettingsDep, TemporalClientDep
from gateway.pipelines import pipeline_problems
from gateway.schedule_models import (
    BackfillRequest,
    ScheduleCreate,
    ScheduleNote,
    ScheduleSummary,
    ScheduleView,
)
from gateway.schedules import MAX_LISTED, CronRefused, ScheduleService
from gateway.starts import dag_engine_options, unprocessable
from gateway.tenancy import TenantDep
from workflows.dag.models import DagRunInput

router = APIRouter(tags=["schedules"])


async def get_schedules(
    client: TemporalClientDep, tenant: TenantDep, settings: SettingsDep
) -> ScheduleService:
    return ScheduleService(client, tenant, settings)


SchedulesDep = Annotated[ScheduleService, Depends(get_schedules)]

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such schedule"}}


@router.post(
    "/schedules",
    status_code=201,
    response_model=ScheduleView,
    responses={
        409: {"description": "a schedule by that id exists"},
        422: {"description": "an invalid pipeline, or not exactly one of cron and interval"},
        429: {"description": "the tenant has TENANT_MAX_SCHEDULES schedules"},
    },
)
async def create_schedule(
    request: ScheduleCreate, schedules: SchedulesDep, settings: SettingsDep, tenant: TenantDep
) -> ScheduleView | JSONResponse:
    """Create a schedule that starts the pipeline whenever it is due; the pipeline is checked
    as `POST /execute` checks it, and each run keeps the operator's options of today."""
    pipeline = request.pipeline
    if pipeline.workflow_id != request.schedule_id:
        return unprocessable(
            [
                {
                    "loc": ["body", "pipeline", "workflow_id"],
                    "msg": "a schedule's runs are named by the schedule: leave workflow_id out"
                    " or give the schedule_id",
                    "type": "value_error",
                }
            ]
        )
    engine = dag_engine_options(settings, tenant, pipeline)
    engine.scheduled_id_prefix = tenant.workflow_id("")
    run = DagRunInput(**dict(pipeline), engine=engine)
    problems = pipeline_problems(run)
    if problems:
        return unprocessable(
            [
                {**problem.as_dict(), "loc": ["body", "pipeline", *problem.loc]}
                for problem in problems
            ]
        )
    try:
        view = await schedules.create(request, run)
    except CronRefused as exc:
        return unprocessable(
            [{"loc": ["body", "cron"], "msg": f"cron: {exc}", "type": "value_error"}]
        )
    return JSONResponse(
        status_code=201,
        content=view.model_dump(mode="json"),
        headers={"Location": f"/schedules/{request.schedule_id}"},
    )


@router.get("/schedules", response_model=list[ScheduleSummary])
async def list_schedules(
    schedules: SchedulesDep, limit: int = Query(100, ge=1, le=MAX_LISTED)
) -> list[ScheduleSummary]:
    """The caller's schedules."""
    return await schedules.list(limit)


@router.get("/schedules/{schedule_id}", response_model=ScheduleView, responses=NOT_FOUND)
async def get_schedule(schedule_id: str, schedules: SchedulesDep) -> ScheduleView:
    """A schedule: its timing, overlap policy, whether paused, its next times and its latest
    runs with their status."""
    return await schedules.describe(schedule_id)


@router.post("/schedules/{schedule_id}/pause", response_model=ScheduleView, responses=NOT_FOUND)
async def pause_schedule(
    schedule_id: str,
    schedules: SchedulesDep,
    request: Annotated[ScheduleNote | None, Body()] = None,
) -> ScheduleView:
    """Start no run until unpaused; a running run goes on."""
    return await schedules.pause(schedule_id, True, request.note if request else None)


@router.post("/schedules/{schedule_id}/unpause", response_model=ScheduleView, responses=NOT_FOUND)
async def unpause_schedule(
    schedule_id: str,
    schedules: SchedulesDep,
    request: Annotated[ScheduleNote | None, Body()] = None,
) -> ScheduleView:
    """Start runs again when they are due (the ones due while paused are not made up)."""
    return await schedules.pause(schedule_id, False, request.note if request else None)


@router.post("/schedules/{schedule_id}/trigger", response_model=ScheduleView, responses=NOT_FOUND)
async def trigger_schedule(schedule_id: str, schedules: SchedulesDep) -> ScheduleView:
    """Start a run now, as if it were due (under the schedule's overlap policy), paused or
    not."""
    return await schedules.trigger(schedule_id)


@router.post(
    "/schedules/{schedule_id}/backfill",
    response_model=ScheduleView,
    responses={**NOT_FOUND, 422: {"description": "a range that is not in the past"}},
)
async def backfill_schedule(
    schedule_id: str, request: BackfillRequest, schedules: SchedulesDep
) -> ScheduleView:
    """Start the runs that were due between `start` and `end` (both in the past), now."""
    return await schedules.backfill(schedule_id, request)


@router.delete("/schedules/{schedule_id}", status_code=204, responses=NOT_FOUND)
async def delete_schedule(schedule_id: str, schedules: SchedulesDep) -> Response:
    """Delete the schedule; runs it started go on, and stay readable through `/runs`."""
    await schedules.delete(schedule_id)
    return Response(status_code=204)
