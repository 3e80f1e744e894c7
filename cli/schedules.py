"""`workflow-station schedule ...`: a DAG pipeline run when it is due, over the typed client
(`gateway.client`, routes `/schedules`).

    workflow-station schedule create FILE --every 5m | --cron "0 6 * * *" [--overlap skip]
                                          [--paused] [--id ID] [--note TEXT]
    workflow-station schedule list | show ID | pause ID | unpause ID | trigger ID | delete ID
    workflow-station schedule backfill ID --start 2026-12-01T00:00:00Z --end 2026-12-02T00:00:00Z
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, cast, get_args

import typer
from rich.table import Table

from cli.commands import (
    DEFAULT_GATEWAY,
    ApiKeyOption,
    GatewayOption,
    client_for,
    console,
    fail_usage,
    gateway_errors,
    problem_line,
    read_payload,
)
from cli.render import STATUS_STYLE
from gateway.client import InvalidPayload
from gateway.schedule_models import Overlap, ScheduleView

schedule_app = typer.Typer(
    help="Run a DAG pipeline on a schedule: create, list, show, pause, unpause, trigger,"
    " backfill, delete.",
    no_args_is_help=True,
)

#: `--every`'s units, in seconds: `90s`, `5m`, `2h`, `1d` (a bare number is seconds).
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
OVERLAPS: tuple[str, ...] = get_args(Overlap)

IdArgument = Annotated[str, typer.Argument(help="the schedule's id")]
NoteOption = Annotated[str | None, typer.Option("--note", help="why (kept on the schedule)")]


def interval_seconds(every: str) -> int:
    """`--every`'s duration in whole seconds; an unreadable one ends the command (exit 2)."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", every)
    if match is None or int(match[1]) == 0:
        fail_usage(f"--every {every!r}: give a duration such as 30s, 5m, 2h or 1d")
    return int(match[1]) * UNITS[match[2] or "s"]


def overlap_of(value: str) -> Overlap:
    """`--overlap`'s policy; another word ends the command (exit 2)."""
    if value not in OVERLAPS:
        fail_usage(f"--overlap {value!r}: one of {', '.join(OVERLAPS)}")
    return cast(Overlap, value)


def moment(option: str, value: str) -> datetime:
    """An ISO 8601 time (`Z` or an offset; none: UTC, as the gateway reads it)."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        fail_usage(f"{option} {value!r}: give an ISO 8601 time, e.g. 2026-12-01T06:00:00Z")


def show_schedule(view: ScheduleView) -> None:
    """A schedule's timing and state, then its latest runs, newest first."""
    timing = f"every {view.interval_seconds}s" if view.interval_seconds else " ".join(view.cron)
    state = "[yellow]paused[/yellow]" if view.paused else "[green]active[/green]"
    console.print(f"{view.schedule_id}: {timing}, overlap {view.overlap}, {state}")
    if view.note:
        console.print(f"  note: {view.note}")
    upcoming = ", ".join(f"{due:%Y-%m-%d %H:%M:%S}Z" for due in view.next_action_times[:3])
    console.print(f"  next: {upcoming or '-'}", soft_wrap=True)
    console.print(
        f"  runs started: {view.runs_started}, skipped for overlap: {view.skipped_for_overlap}"
    )
    # Lines, not a table: a run's id is what to copy into `status`, so it is never cut.
    for run in view.recent_runs:
        status = run.status or "unknown"
        console.print(
            f"  {run.workflow_id}  [{STATUS_STYLE.get(status, '')}]{status}[/]"
            f"  due {run.scheduled_at:%Y-%m-%d %H:%M:%S}Z",
            soft_wrap=True,
        )


@schedule_app.command("create")
def create(
    file: Annotated[Path, typer.Argument(help="a DAG pipeline file, as `run` takes")],
    every: Annotated[
        str | None, typer.Option("--every", help="a run every 30s, 5m, 2h, 1d…")
    ] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="or a cron expression (UTC)")] = None,
    overlap: Annotated[
        str, typer.Option(help="when a run is due while one runs: " + ", ".join(OVERLAPS))
    ] = "skip",
    paused: Annotated[bool, typer.Option("--paused", help="create it paused")] = False,
    schedule_id: Annotated[
        str | None, typer.Option("--id", help="the schedule's id (default: the file's workflow_id)")
    ] = None,
    note: NoteOption = None,
    gateway: GatewayOption = DEFAULT_GATEWAY,
    api_key: ApiKeyOption = None,
) -> None:
    """Create a schedule of a pipeline (POST /schedules); its runs are `<id>-<due time>`."""
    if (every is None) == (cron is None):
        fail_usage("give exactly one of --every and --cron")
    policy = overlap_of(overlap)
    payload, engine = read_payload(file)
    if engine != "dag":
        fail_usage(f"{file}: a schedule runs a DAG pipeline (STEPS_CONFIG), not instructions")
    name = schedule_id or payload.get("workflow_id")
    if not isinstance(name, str):
        fail_usage(f"{file}: no workflow_id to name the schedule by; give --id")
    body: dict[str, Any] = {
        "schedule_id": name,
        "pipeline": {**payload, "workflow_id": name},
        "overlap": policy,
        "paused": paused,
        "note": note,
    }
    if every is not None:
        body["interval_seconds"] = interval_seconds(every)
    else:
        body["cron"] = cron
    with gateway_errors():
        try:
            view = client_for(gateway, api_key).create_schedule(body)
        except InvalidPayload as invalid:
            for item in invalid.problems:
                console.print(problem_line(item))
            raise typer.Exit(2) from invalid
    show_schedule(view)


@schedule_app.command("list")
def list_schedules(gateway: GatewayOption = DEFAULT_GATEWAY, api_key: ApiKeyOption = None) -> None:
    """Your schedules (GET /schedules)."""
    with gateway_errors():
        schedules = client_for(gateway, api_key).list_schedules()
    table = Table("schedule_id", "timing", "state", "next")
    for item in schedules:
        timing = f"every {item.interval_seconds}s" if item.interval_seconds else " ".join(item.cron)
        upcoming = item.next_action_times[0].isoformat() if item.next_action_times else ""
        table.add_row(item.schedule_id, timing, "paused" if item.paused else "active", upcoming)
    console.print(table)


@schedule_app.command("show")
def show(
    schedule_id: IdArgument, gateway: GatewayOption = DEFAULT_GATEWAY, api_key: ApiKeyOption = None
) -> None:
    """A schedule, its next times and its latest runs with their status."""
    with gateway_errors():
        show_schedule(client_for(gateway, api_key).get_schedule(schedule_id))


@schedule_app.command("pause")
def pause(
    schedule_id: IdArgument,
    note: NoteOption = None,
    gateway: GatewayOption = DEFAULT_GATEWAY,
    api_key: ApiKeyOption = None,
) -> None:
    """Start no run until unpaused (a running run goes on)."""
    with gateway_errors():
        show_schedule(client_for(gateway, api_key).pause_schedule(schedule_id, note))


@schedule_app.command("unpause")
def unpause(
    schedule_id: IdArgument,
    note: NoteOption = None,
    gateway: GatewayOption = DEFAULT_GATEWAY,
    api_key: ApiKeyOption = None,
) -> None:
    """Start runs again when they are due."""
    with gateway_errors():
        show_schedule(client_for(gateway, api_key).unpause_schedule(schedule_id, note))


@schedule_app.command("trigger")
def trigger(
    schedule_id: IdArgument, gateway: GatewayOption = DEFAULT_GATEWAY, api_key: ApiKeyOption = None
) -> None:
    """Start a run now, paused or not."""
    with gateway_errors():
        show_schedule(client_for(gateway, api_key).trigger_schedule(schedule_id))


@schedule_app.command("backfill")
def backfill(
    schedule_id: IdArgument,
    start: Annotated[str, typer.Option("--start", help="ISO 8601, UTC unless it says")],
    end: Annotated[str, typer.Option("--end", help="ISO 8601, in the past")],
    overlap: Annotated[
        str | None, typer.Option(help="how the range's runs overlap (default: allow_all)")
    ] = None,
    gateway: GatewayOption = DEFAULT_GATEWAY,
    api_key: ApiKeyOption = None,
) -> None:
    """Start the runs that were due between --start and --end."""
    policy = overlap_of(overlap) if overlap is not None else None
    since, until = moment("--start", start), moment("--end", end)
    with gateway_errors():
        view = client_for(gateway, api_key).backfill_schedule(schedule_id, since, until, policy)
    show_schedule(view)


@schedule_app.command("delete")
def delete(
    schedule_id: IdArgument, gateway: GatewayOption = DEFAULT_GATEWAY, api_key: ApiKeyOption = None
) -> None:
    """Delete a schedule; the runs it started are kept."""
    with gateway_errors():
        client_for(gateway, api_key).delete_schedule(schedule_id)
    console.print(f"deleted schedule {schedule_id}")
