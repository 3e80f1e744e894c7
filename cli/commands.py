"""The `workflow-station` command line: the typer app, its commands and `main`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from cli.dev import dev
from cli.devkey import api_key_for
from cli.examples import submit_examples
from cli.render import (
    STATUS_STYLE,
    apply_delta,
    apply_event,
    plan_view,
    progress_view,
    short,
    step_line,
)
from gateway.client import ClientError, InvalidPayload, WorkflowStationClient
from settings import get_settings
from workflows.shared.plans import Engine, engine_of

app = typer.Typer(
    help="Workflow Station: run pipelines and watch them live, or start the processes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

GatewayOption = Annotated[
    str, typer.Option("--gateway", envvar="GATEWAY_URL", help="the gateway's base URL")
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="WORKFLOW_STATION_API_KEY",
        help="the tenant's key, when the gateway has GATEWAY_API_KEYS (default: the key"
        " `make dev` created, for a gateway on this machine)",
        show_default=False,
    ),
]
DEFAULT_GATEWAY = "http://127.0.0.1:8000"


#: `run`'s exit codes: the shell's convention for an interrupted command when cancelled.
EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


@contextmanager
def gateway_errors() -> Iterator[None]:
    """A gateway error ends the command with its message (exit 2), not a traceback."""
    try:
        yield
    except ClientError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc


def read_payload(file: Path) -> tuple[dict[str, Any], Engine]:
    """A pipeline file's payload and its engine; a file that is neither ends the command with
    one line (exit 2)."""
    try:
        payload = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        fail_usage(f"{file}: cannot read it: {exc}")
    except json.JSONDecodeError as exc:
        fail_usage(f"{file}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    engine = engine_of(payload)
    if engine is None:
        fail_usage(
            f"{file}: not a pipeline: a DAG pipeline has STEPS_CONFIG, an instruction run has"
            " instructions"
        )
    return payload, engine


def fail_usage(message: str) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(EXIT_USAGE)


def outcome_code(state: str) -> int:
    if state in ("completed", "complete"):
        return EXIT_COMPLETED
    if state in ("cancelled", "terminated"):
        return EXIT_CANCELLED
    return EXIT_FAILED


def report(run: dict[str, Any]) -> int:
    """Print a finished run's outputs, or what failed; the exit code its outcome calls for."""
    state = str(run.get("status"))
    if state == "completed":
        console.print("[green]completed[/green]; outputs:")
        console.print_json(json.dumps(run.get("outputs") or {}))
    elif state == "cancelled":
        console.print("[red]cancelled[/red]; outputs of the steps that completed:")
        console.print_json(json.dumps(run.get("outputs") or {}))
    else:
        error = run.get("error") or {}
        where = f"step {error['step_name']!r}" if error.get("step_name") else "the run"
        console.print(
            f"[red]{state}[/red]: {where} failed: {error.get('type')}: {error.get('message')}"
        )
    return outcome_code(state)


#: `--follow` reads the run's whole status (every step's attempts and times) at most this
#: often: a fan-out's thousands of events cost a few reads, not one each.
FOLLOW_READ_SECONDS = 0.5


def client_for(gateway: str, api_key: str | None) -> WorkflowStationClient:
    """The gateway at `gateway`, with `api_key`, else `WORKFLOW_STATION_API_KEY`, else
    `make dev`'s key for a gateway on this machine (`cli.devkey`)."""
    return WorkflowStationClient(gateway, api_key_for(get_settings(), gateway, api_key))


def read_run(client: WorkflowStationClient, workflow_id: str) -> dict[str, Any]:
    """A run's status as the gateway wrote it, for drawing."""
    return client.get(workflow_id).model_dump(mode="json")


def follow(client: WorkflowStationClient, workflow_id: str) -> int:
    """Draw the run's steps live from its event stream until it ends; its exit code."""
    run = read_run(client, workflow_id)
    read_at = time.monotonic()
    streamed: dict[str, str] = {}
    attempts: dict[str, int] = {}
    with Live(progress_view(run), console=console, refresh_per_second=8) as live:
        for event in client.events(workflow_id):
            if event.event == "end":
                break
            if event.event == "step.delta":
                apply_delta(streamed, attempts, event.data)
                live.update(progress_view(run, streamed))
                continue
            # The event says what changed; the status adds attempts and times, read again
            # once the last read is old enough (the final one comes after the stream).
            apply_event(run, event.data)
            if time.monotonic() - read_at >= FOLLOW_READ_SECONDS:
                run = read_run(client, workflow_id)
                read_at = time.monotonic()
            live.update(progress_view(run, streamed))
        run = read_run(client, workflow_id)
        live.update(progress_view(run, streamed))
    if not console.is_terminal:
        console.line()  # Live leaves its last frame without a line end when piped
    return report(run)


def follow_instructions(client: WorkflowStationClient, instance_id: str) -> int:
    """Print an instruction run's steps as they finish, then its output; its exit code."""
    shown: set[int] = set()

    def show_finished() -> dict[str, Any]:
        run = read_run(client, instance_id)
        for step in run.get("steps") or []:
            if step["index"] not in shown and step["status"] in ("completed", "failed"):
                shown.add(step["index"])
                console.print(step_line(step))
        return run

    for event in client.events(instance_id):
        if event.event == "end":
            break
        if event.event.startswith("step."):
            show_finished()
    run = show_finished()
    state = str(run.get("status"))
    console.print(f"{state}; output: {short(run.get('output'), 400)}")
    if run.get("error"):
        console.print(f"[red]error:[/red] {run['error']['type']}: {run['error']['message']}")
    return outcome_code(state)


@app.command()
def run(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="a DAG pipeline or instruction run")
    ],
    follow_run: Annotated[
        bool, typer.Option("--follow", "-f", help="draw the steps live until the run ends")
    ] = False,
    gateway: GatewayOption = DEFAULT_GATEWAY,
    api_key: ApiKeyOption = None,
) -> None:
    """Start a DAG pipeline (POST /execute) or an instruction run (POST /), told by its shape.

    A file that is not JSON, or not a pipeline: one line, exit 2. With --follow: exit 0 when
    the run completes, 1 when it fails (naming the step), 130 when it is cancelled."""
    payload, engine = read_payload(file)
    client = client_for(gateway, api_key)
    with gateway_errors():
        if engine == "dag":
            started = client.start(payload)
            workflow_id, run_id = started.workflow_id, started.run_id
        else:
            instruction_run = client.start_instructions(payload)
            workflow_id, run_id = instruction_run.instance_id, None
        console.print(f"started {workflow_id}" + (f" (run {run_id})" if run_id else ""))
        if not follow_run:
            console.print(f"follow it: workflow-station status {workflow_id}")
            return
        if engine == "dag":
            code = follow(client, workflow_id)
        else:
            code = follow_instructions(client, workflow_id)
    raise typer.Exit(code)


def problem_line(item: dict[str, Any]) -> str:
    """One 422 item as a line: its message, after the field it names unless the message
    already starts with it (`STEPS_CONFIG[1].timout: unknown field; …`)."""
    message = str(item.get("msg"))
    where = ".".join(str(part) for part in item.get("loc", [])[1:])
    if not where or message.startswith(where.split(".")[0]):
        return message
    return f"{where}: {message}"


@app.command()
def validate(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="a DAG pipeline or instruction run")
    ],
    gateway: GatewayOption = DEFAULT_GATEWAY,
    api_key: ApiKeyOption = None,
) -> None:
    """Check a pipeline without running it (POST /validate): its plan and warnings, exit 0;
    or every problem, exit 1."""
    payload, engine = read_payload(file)
    with gateway_errors():
        try:
            plan = client_for(gateway, api_key).validate(payload, engine)
        except InvalidPayload as invalid:
            for item in invalid.problems:
                console.print(f"[red]✗[/red] {problem_line(item)}", soft_wrap=True)
            console.print(f"{file}: {len(invalid.problems)} problem(s)")
            raise typer.Exit(EXIT_FAILED) from invalid
    console.print(plan_view(plan.model_dump(mode="json")))
    raise typer.Exit(EXIT_COMPLETED)


@app.command()
def status(
    workflow_id: Annotated[str, typer.Argument(help="the run's workflow_id or instanceId")],
    as_json: Annotated[bool, typer.Option("--json", help="the gateway's answer as JSON")] = False,
    gateway: GatewayOption = DEFAULT_GATEWAY,
    api_key: ApiKeyOption = None,
) -> None:
    """A run's state (GET /runs/{id})."""
    with gateway_errors():
        run = read_run(client_for(gateway, api_key), workflow_id)
    if as_json:
        console.print_json(json.dumps(run))
    elif isinstance(run.get("steps"), dict):
        console.print(progress_view(run))
    else:  # an instruction run
        for step in run.get("steps") or []:
            console.print(step_line(step))
        console.print(f"status={run.get('status')}, output: {short(run.get('output'), 200)}")


@app.command("list")
def list_runs(
    state: Annotated[
        str | None,
        typer.Option("--status", help="running, completed, failed, cancelled, terminated"),
    ] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 50,
    gateway: GatewayOption = DEFAULT_GATEWAY,
    api_key: ApiKeyOption = None,
) -> None:
    """Your runs, newest first (GET /runs)."""
    with gateway_errors():
        runs = client_for(gateway, api_key).list(state, limit)
    table = Table("workflow_id", "engine", "status", "started", "finished")
    for item in runs:
        table.add_row(
            item.workflow_id,
            item.engine,
            f"[{STATUS_STYLE.get(item.status, '')}]{item.status}[/]",
            item.started_at.isoformat() if item.started_at else "",
            item.finished_at.isoformat() if item.finished_at else "",
        )
    console.print(table)


@app.command()
def cancel(
    workflow_id: Annotated[str, typer.Argument(help="the run's workflow_id or instanceId")],
    gateway: GatewayOption = DEFAULT_GATEWAY,
    api_key: ApiKeyOption = None,
) -> None:
    """Cancel a running run (POST /runs/{id}/cancel).

    Running steps are cancelled; the outputs of finished ones are kept."""
    with gateway_errors():
        run = client_for(gateway, api_key).cancel(workflow_id)
    console.print(f"cancelling {workflow_id} (status now: {run.status})")


def parse_edits(assignments: list[str]) -> dict[str, dict[str, Any]]:
    """`STEP.FIELD=VALUE` assignments as the rerun's `steps` overrides: VALUE is read as JSON
    when it is JSON (`5`, `true`, `{"a": 1}`), else as a string (a URL). The step name is
    everything before the last dot, so step names may hold dots; field names do not."""
    edits: dict[str, dict[str, Any]] = {}
    for assignment in assignments:
        target, equals, raw = assignment.partition("=")
        step, dot, field = target.rpartition(".")
        if not (equals and dot and step and field):
            fail_usage(f"--set wants STEP.FIELD=VALUE, not {assignment!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        edits.setdefault(step, {})[field] = value
    return edits


@app.command()
def rerun(
    workflow_id: Annotated[str, typer.Argument(help="the DAG or instruction run to run again")],
    from_step: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="run this step and everything downstream of it again; for an instruction"
            " run, the index of the instruction to start at",
        ),
    ] = None,
    edits: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="STEP.FIELD=VALUE (an instruction run: INDEX.FIELD=VALUE): override a field"
            " of a step (repeatable); VALUE is JSON or a string",
        ),
    ] = None,
    follow_run: Annotated[
        bool, typer.Option("--follow", "-f", help="draw the steps live until the rerun ends")
    ] = False,
    gateway: GatewayOption = DEFAULT_GATEWAY,
    api_key: ApiKeyOption = None,
) -> None:
    """Run a finished run again, reusing what need not run again (POST /runs/{id}/rerun).
    A DAG run: only --from, the edited steps, the steps that did not complete and their
    downstream make calls. An instruction run: it starts at --from (or the first edited or
    unfinished instruction) as the source stood there; the steps before are reused. Exit
    codes as `run`."""
    client = client_for(gateway, api_key)
    with gateway_errors():
        # An instruction run lists its steps; a DAG run maps them by name.
        instruction_run = isinstance(client.get(workflow_id).steps, list)
        try:
            if instruction_run:
                started = client.rerun(
                    workflow_id,
                    from_instruction=instruction_index(from_step) if from_step else None,
                    instructions={
                        instruction_index(index): fields
                        for index, fields in parse_edits(edits or []).items()
                    },
                )
            else:
                started = client.rerun(workflow_id, from_step, parse_edits(edits or []))
        except InvalidPayload as invalid:
            for item in invalid.problems:
                console.print(f"[red]✗[/red] {problem_line(item)}", soft_wrap=True)
            raise typer.Exit(EXIT_USAGE) from invalid
        console.print(
            f"started {started.workflow_id}: reusing {len(started.reused)} step(s),"
            f" running {', '.join(started.rerun) or 'none'}"
        )
        if not follow_run:
            console.print(f"follow it: workflow-station status {started.workflow_id}")
            return
        watch = follow_instructions if instruction_run else follow
        code = watch(client, started.workflow_id)
    raise typer.Exit(code)


def instruction_index(given: str) -> int:
    """An instruction run's step, as `--from` and `--set` name it: its 0-based index."""
    if given.isdecimal():
        return int(given)
    fail_usage(f"an instruction run names its steps by index (0, 1, ...), not {given!r}")


@app.command()
def approve(
    workflow_id: Annotated[str, typer.Argument(help="the run's workflow_id (or instanceId)")],
    step: Annotated[
        str, typer.Argument(help="the waiting approval step (an instruction run's: its index)")
    ],
    reject: Annotated[bool, typer.Option("--reject", help="reject instead of approve")] = False,
    data: Annotated[
        str | None, typer.Option("--data", help="JSON for later steps, per the step's schema")
    ] = None,
    comment: Annotated[str | None, typer.Option("--comment", help="why, for readers")] = None,
    gateway: GatewayOption = DEFAULT_GATEWAY,
    api_key: ApiKeyOption = None,
) -> None:
    """Approve (or --reject) a waiting approval step (POST /runs/{id}/steps/{step}/approve).

    Exits 2 when the step is not waiting or the data breaks its schema."""
    try:
        value = json.loads(data) if data is not None else None
    except json.JSONDecodeError as exc:
        fail_usage(f"--data is not JSON: {exc.msg} (column {exc.colno})")
    with gateway_errors():
        decided = client_for(gateway, api_key).approve(
            workflow_id,
            step,
            decision="reject" if reject else "approve",
            comment=comment,
            data=value,
        )
    console.print(f"{step} of {workflow_id}: {decided['decision']} by {decided['by']}")


@app.command()
def pause(
    workflow_id: Annotated[str, typer.Argument(help="the run's workflow_id (or instanceId)")],
    gateway: GatewayOption = DEFAULT_GATEWAY,
    api_key: ApiKeyOption = None,
) -> None:
    """Pause a run (POST /runs/{id}/pause): it starts no new step; running ones
    finish, approvals and cancels still land."""
    with gateway_errors():
        run = client_for(gateway, api_key).pause(workflow_id)
    console.print(f"{workflow_id}: {run.status}")


@app.command()
def resume(
    workflow_id: Annotated[str, typer.Argument(help="the run's workflow_id (or instanceId)")],
    gateway: GatewayOption = DEFAULT_GATEWAY,
    api_key: ApiKeyOption = None,
) -> None:
    """Resume a paused run (POST /runs/{id}/resume)."""
    with gateway_errors():
        run = client_for(gateway, api_key).resume(workflow_id)
    console.print(f"{workflow_id}: {run.status}")


@app.command("dev")
def dev_command() -> None:
    """The embedded stack in the foreground (what `make dev` runs), then the examples."""
    raise typer.Exit(dev(get_settings()))


@app.command()
def example() -> None:
    """Submit the bundled examples to a running gateway."""
    raise typer.Exit(0 if submit_examples(get_settings()) else 1)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(ctx: typer.Context) -> None:
    """The Temporal worker (worker.py).

    Its own options pass through, such as --endpoint NAME."""
    import worker as worker_module

    worker_module.main(ctx.args)


@app.command()
def gateway() -> None:
    """The HTTP gateway on GATEWAY_HOST:GATEWAY_PORT.

    uvicorn serving gateway.app:create_app."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "gateway.app:create_app",
        factory=True,
        host=settings.gateway_host,
        port=settings.gateway_port,
        timeout_keep_alive=settings.gateway_keep_alive_seconds,
    )


def main() -> None:
    """The `workflow-station` console script."""
    app()


# Last: its commands use the options and helpers above.
from cli.schedules import schedule_app  # noqa: E402

app.add_typer(schedule_app, name="schedule")
