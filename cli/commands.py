"""The `workflow-station` command line: the typer app, its commands and `main`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from cli.client import Gateway, GatewayError, run_path
from cli.dev import dev
from cli.devkey import local_dev_api_key
from cli.examples import submit_examples
from cli.render import STATUS_STYLE, apply_event, progress_view, short, step_line
from settings import get_settings

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


def connect(url: str, api_key: str | None) -> Gateway:
    """The gateway at `url`, with `api_key`, else `make dev`'s key for a gateway on this
    machine (`cli.devkey`)."""
    return Gateway(url, api_key or local_dev_api_key(get_settings(), url))


#: `run`'s exit codes: the shell's convention for an interrupted command when cancelled.
EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


@contextmanager
def gateway_errors() -> Iterator[None]:
    """A gateway error ends the command with its message (exit 2), not a traceback."""
    try:
        yield
    except GatewayError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc


def outcome_code(state: str) -> int:
    if state == "completed":
        return EXIT_COMPLETED
    if state == "cancelled":
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


def follow(gateway: Gateway, workflow_id: str) -> int:
    """Draw the run's steps live from its SSE stream until it ends; its exit code."""
    path = run_path(workflow_id)
    run = gateway.request("GET", path)
    read_at = time.monotonic()
    with Live(progress_view(run), console=console, refresh_per_second=8) as live:
        for event, data in gateway.events(workflow_id):
            if event == "end":
                break
            # The event says what changed; the status adds attempts and times, read again
            # once the last read is old enough (the final one comes after the stream).
            apply_event(run, data)
            if time.monotonic() - read_at >= FOLLOW_READ_SECONDS:
                run = gateway.request("GET", path)
                read_at = time.monotonic()
            live.update(progress_view(run))
        run = gateway.request("GET", path)
        live.update(progress_view(run))
    if not console.is_terminal:
        console.line()  # Live leaves its last frame without a line end when piped
    return report(run)


@app.command()
def run(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a pipeline JSON")],
    follow_run: Annotated[
        bool, typer.Option("--follow", "-f", help="draw the steps live until the run ends")
    ] = False,
    gateway: GatewayOption = DEFAULT_GATEWAY,
    api_key: ApiKeyOption = None,
) -> None:
    """Start a DAG pipeline (POST /execute).

    With --follow: exit 0 when it completes, 1 when it fails (naming the step), 130 when it
    is cancelled."""
    payload = json.loads(file.read_text())
    client = connect(gateway, api_key)
    with gateway_errors():
        started = client.request("POST", "/execute", params={"wait": "false"}, json=payload)
        workflow_id = started["workflow_id"]
        console.print(f"started {workflow_id} (run {started.get('run_id')})")
        if not follow_run:
            console.print(f"follow it: workflow-station status {workflow_id}")
            return
        code = follow(client, workflow_id)
    raise typer.Exit(code)


@app.command()
def status(
    workflow_id: Annotated[str, typer.Argument(help="the run's workflow_id or instanceId")],
    as_json: Annotated[bool, typer.Option("--json", help="the gateway's answer as JSON")] = False,
    gateway: GatewayOption = DEFAULT_GATEWAY,
    api_key: ApiKeyOption = None,
) -> None:
    """A run's state (GET /runs/{id})."""
    with gateway_errors():
        run = connect(gateway, api_key).request("GET", run_path(workflow_id))
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
    params: dict[str, Any] = {"limit": limit}
    if state:
        params["status"] = state
    with gateway_errors():
        runs = connect(gateway, api_key).request("GET", "/runs", params=params)
    table = Table("workflow_id", "engine", "status", "started", "finished")
    for item in runs:
        table.add_row(
            item["workflow_id"],
            item["engine"],
            f"[{STATUS_STYLE.get(item['status'], '')}]{item['status']}[/]",
            item.get("started_at") or "",
            item.get("finished_at") or "",
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
        run = connect(gateway, api_key).request("POST", f"{run_path(workflow_id)}/cancel")
    console.print(f"cancelling {workflow_id} (status now: {run.get('status')})")


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
