"""How a run is drawn in the terminal: its steps as a table, its progress, an instruction
step as a line, and the update a step event makes to the run being drawn."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text


def short(text: Any, limit: int = 90) -> str:
    """`text` on one line, cut to `limit` characters (an ellipsis marks the cut)."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def step_line(step: dict[str, Any]) -> str:
    """An instruction run's step as one line: index, type, status, what its condition,
    router or thread decided, or its error, and the start of its result."""
    notes = []
    if step.get("condition"):
        condition = step["condition"]
        notes.append(f"condition {condition['mode']}={condition['verdict']}")
    if step.get("router"):
        router = step["router"]
        notes.append(f"router→{router['chosen']}{' (fallback)' if router['fallbackUsed'] else ''}")
    if step.get("thread"):
        notes.append(f"complete={step['thread']['complete']}")
    if step.get("error"):
        notes.append(f"{step['error']['type']}: {step['error']['message']}")
    note = f" [{', '.join(notes)}]" if notes else ""
    return (
        f"  - step {step['index']} {step['type']:<9} {step['status']:<9}{note} "
        f"{short(step.get('result'))}"
    )


def _duration(step: dict[str, Any]) -> str:
    started, finished = step.get("started_at"), step.get("finished_at")
    if not started:
        return ""
    end = datetime.fromisoformat(finished) if finished else datetime.now(UTC)
    return f"{(end - datetime.fromisoformat(started)).total_seconds():.1f}s"


STATUS_STYLE = {
    "completed": "green",
    "running": "yellow",
    "waiting": "cyan",
    "paused": "cyan",
    "failed": "red",
    "aborted": "magenta",
    "cancelled": "red",
    "pending": "dim",
}


def steps_table(run: dict[str, Any]) -> Table:
    """A DAG run's steps: name, status, attempts, duration (and what failed)."""
    table = Table(title=f"{run.get('workflow_id')}: {run.get('status')}", title_justify="left")
    for column in ("step", "status", "attempts", "duration", "note"):
        table.add_column(column, justify="right" if column in ("attempts", "duration") else "left")
    for name, step in (run.get("steps") or {}).items():
        status = step.get("status", "pending")
        note = (step.get("error") or {}).get("message") or step.get("abort_reason") or ""
        note = note or step.get("last_failure") or ""
        table.add_row(
            name,
            f"[{STATUS_STYLE.get(status, '')}]{status}[/]",
            str(step.get("attempts") or ""),
            _duration(step),
            short(note, 50),
        )
    return table


def progress_view(run: dict[str, Any], streamed: dict[str, str] | None = None) -> Group:
    """The steps table and a progress bar; under them, the text streamed so far by each
    step that streams its answer (`streamed`, kept by `apply_delta`)."""
    progress = run.get("progress") or {}
    total = progress.get("total") or len(run.get("steps") or {}) or 1
    done = sum(progress.get(k, 0) for k in ("completed", "failed", "aborted", "cancelled"))
    bar = ProgressBar(total=total, completed=done, width=60)
    line = Table.grid(padding=(0, 1))
    line.add_row(bar, f"{done}/{total} steps")
    texts = [
        Text.assemble((f"{name}: ", "bold"), _tail(text)) for name, text in (streamed or {}).items()
    ]
    return Group(steps_table(run), line, *texts)


#: Lines of a step's streamed text kept on screen: the end of a long answer, as it grows.
STREAM_TAIL_LINES = 12


def _tail(text: str) -> str:
    return "\n".join(text.splitlines()[-STREAM_TAIL_LINES:])


def apply_delta(streamed: dict[str, str], attempts: dict[str, int], data: Any) -> None:
    """Add a `step.delta` event's chunk to its step's text; a chunk of a new attempt (the
    call was retried and streams again) starts the text over."""
    if not isinstance(data, dict) or not isinstance(data.get("delta"), str):
        return
    step, attempt = str(data.get("step_name")), int(data.get("attempt") or 1)
    if attempts.get(step) != attempt:
        attempts[step] = attempt
        streamed[step] = ""
    streamed[step] = streamed.get(step, "") + data["delta"]


#: A step event's new status for the step it names (`--follow` draws it at once).
STEP_EVENT_STATUS = {
    "step.started": "running",
    "step.waiting": "waiting",
    "step.completed": "completed",
    "step.failed": "failed",
    "step.aborted": "aborted",
    "step.waiting_for_rate_limit": "waiting",
}

#: Events that move the run itself, and the status they move it to.
RUN_EVENT_STATUS = {"workflow.paused": "paused", "workflow.resumed": "running"}


def apply_event(run: dict[str, Any], data: Any) -> None:
    """Update `run` (a status) with what an event says: the step's status, the run's
    progress counts, whether it is paused."""
    if not isinstance(data, dict):
        return
    step = (run.get("steps") or {}).get(data.get("step_name"))
    status = STEP_EVENT_STATUS.get(str(data.get("event")))
    if step is not None and status is not None:
        step["status"] = status
    run_status = RUN_EVENT_STATUS.get(str(data.get("event")))
    if run_status is not None:
        run["status"] = run_status
    if isinstance(data.get("progress"), dict):
        run["progress"] = {**(run.get("progress") or {}), **data["progress"]}


def plan_view(plan: dict[str, Any]) -> Group:
    """A validated payload's plan: its steps level by level, what each reads, the warnings."""
    table = Table(title=f"valid {plan['engine']} payload", title_justify="left")
    for column in ("level", "step", "type", "after", "reads"):
        table.add_column(column)
    steps = {step["name"]: step for step in plan["steps"]}
    for level, names in enumerate(plan["levels"]):
        for name in names:
            step = steps[name]
            table.add_row(
                str(level),
                name,
                step["type"],
                ", ".join(step["dependencies"]),
                short(", ".join(step["reads"]), 50),
            )
    warnings = [f"[yellow]![/yellow] {warning['msg']}" for warning in plan["warnings"]]
    return Group(table, *warnings)
