"""What the schedule routes take and answer (`gateway.routes.schedules`), apart from the
service that talks to Temporal (`gateway.schedules`), so the typed client and the CLI read
them without it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from workflows.dag.models import PipelineRequest
from workflows.shared.payloads import StrictPayload

#: What a due run does while the schedule's last run still runs (Temporal's overlap policies).
Overlap = Literal["skip", "buffer_one", "allow_all", "cancel_other"]

#: A schedule id: the characters of a run's `workflow_id` but `/` (it is one path segment of
#: the routes), and room for the time Temporal appends to name each run
#: (`-2026-12-07T13:45:00Z`).
SCHEDULE_ID = Field(
    min_length=1,
    max_length=150,
    pattern=r"^[A-Za-z0-9._:@-]+$",
    description="The schedule's id; its runs are `<schedule_id>-<time it was due>`.",
    examples=["nightly-digest"],
)


class ScheduleCreate(StrictPayload):
    """`POST /schedules`: a pipeline and when to run it.

    The pipeline is checked as `POST /execute` checks it; its `workflow_id` may be left out
    (each run is named by the schedule and the time it was due, whatever it says).
    """

    schedule_id: str = SCHEDULE_ID
    pipeline: PipelineRequest = Field(description="The `POST /execute` body each run starts.")
    cron: str | None = Field(
        None,
        description="When runs are due, as a cron expression (UTC), e.g. `0 6 * * *`.",
        examples=["*/15 * * * *"],
    )
    interval_seconds: int | None = Field(
        None, ge=1, description="Or: a run is due every this many seconds."
    )
    overlap: Overlap = Field(
        "skip",
        description=(
            "When a run is due while the last one still runs: `skip` it, `buffer_one` (start it"
            " when the last ends, at most one waiting), `allow_all` (start it anyway), or"
            " `cancel_other` (cancel the running one, then start)."
        ),
    )
    paused: bool = Field(False, description="Create it paused: no run starts until unpaused.")
    note: str | None = Field(None, max_length=500, description="Why it exists, or is paused.")

    @model_validator(mode="before")
    @classmethod
    def _pipeline_named_by_schedule(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("pipeline"), dict):
            pipeline = data["pipeline"]
            if "workflow_id" not in pipeline and isinstance(data.get("schedule_id"), str):
                return {**data, "pipeline": {**pipeline, "workflow_id": data["schedule_id"]}}
        return data

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleCreate:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("give exactly one of cron and interval_seconds")
        return self


class BackfillRequest(StrictPayload):
    """`POST /schedules/{id}/backfill`: start the runs that were due in a past range."""

    start: datetime = Field(description="The range's start (ISO 8601, with a time zone).")
    end: datetime = Field(description="The range's end; runs due before it start.")
    overlap: Overlap | None = Field(
        None, description="How the range's runs overlap; unset: `allow_all`, so all start."
    )

    @model_validator(mode="after")
    def _ordered(self) -> BackfillRequest:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class ScheduleNote(StrictPayload):
    """Why a schedule is paused or unpaused (kept on the schedule, shown by `GET`)."""

    note: str | None = Field(None, max_length=500)


class ScheduledRun(BaseModel):
    """A run a schedule started: `workflow_id` is what `GET /runs/{workflow_id}` reads."""

    workflow_id: str
    run_id: str
    scheduled_at: datetime
    started_at: datetime
    status: str | None = None


class ScheduleSummary(BaseModel):
    """A schedule as `GET /schedules` lists it."""

    schedule_id: str
    cron: list[str] = Field(default_factory=list)
    interval_seconds: int | None = None
    paused: bool = False
    note: str | None = None
    next_action_times: list[datetime] = Field(default_factory=list)


class ScheduleView(ScheduleSummary):
    """`GET /schedules/{id}`: its timing, policy, next times and latest runs (newest first,
    the last ten Temporal keeps, each with its status)."""

    overlap: Overlap = "skip"
    created_at: datetime | None = None
    runs_started: int = 0
    skipped_for_overlap: int = 0
    running: list[str] = Field(default_factory=list)
    recent_runs: list[ScheduledRun] = Field(default_factory=list)
