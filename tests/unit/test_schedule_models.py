"""What `POST /schedules` takes, and the CLI's `--every`, checked without a server."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from pydantic import ValidationError

from cli.schedules import interval_seconds
from gateway.schedule_models import BackfillRequest, ScheduleCreate

PIPELINE: dict[str, Any] = {
    "STEPS_CONFIG": [{"step_name": "a", "usid": "u1", "service_url": "http://127.0.0.1/a"}]
}


def test_the_pipeline_is_named_by_the_schedule_when_it_names_nothing() -> None:
    created = ScheduleCreate.model_validate(
        {"schedule_id": "nightly", "pipeline": PIPELINE, "interval_seconds": 60}
    )
    assert created.pipeline.workflow_id == "nightly"
    assert created.overlap == "skip"
    assert created.paused is False


@pytest.mark.parametrize(
    "timing", [{}, {"cron": "* * * * *", "interval_seconds": 5}], ids=["neither", "both"]
)
def test_exactly_one_of_cron_and_interval(timing: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of cron and interval_seconds"):
        ScheduleCreate.model_validate({"schedule_id": "s", "pipeline": PIPELINE, **timing})


@pytest.mark.parametrize("schedule_id", ["", "a/b", "x" * 151])
def test_a_schedule_id_is_one_path_segment_with_room_for_the_due_time(schedule_id: str) -> None:
    with pytest.raises(ValidationError):
        ScheduleCreate.model_validate(
            {"schedule_id": schedule_id, "pipeline": PIPELINE, "interval_seconds": 5}
        )


def test_unknown_keys_and_policies_are_refused() -> None:
    with pytest.raises(ValidationError, match="every"):
        ScheduleCreate.model_validate(
            {"schedule_id": "s", "pipeline": PIPELINE, "every": 5, "interval_seconds": 5}
        )
    with pytest.raises(ValidationError, match="overlap"):
        ScheduleCreate.model_validate(
            {"schedule_id": "s", "pipeline": PIPELINE, "interval_seconds": 5, "overlap": "queue"}
        )


def test_a_backfill_ends_after_it_starts() -> None:
    with pytest.raises(ValidationError, match="end must be after start"):
        BackfillRequest.model_validate(
            {"start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"}
        )


@pytest.mark.parametrize(
    ("every", "seconds"), [("45", 45), ("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400)]
)
def test_every_reads_a_duration(every: str, seconds: int) -> None:
    assert interval_seconds(every) == seconds


@pytest.mark.parametrize("every", ["0s", "5 minutes", "-5s", "1.5h"])
def test_every_refuses_what_is_no_duration(every: str) -> None:
    with pytest.raises(typer.Exit) as ended:
        interval_seconds(every)
    assert ended.value.exit_code == 2
