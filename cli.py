"""`workflow-station`, the command line (`python cli.py` is the same), and `make dev`.

    workflow-station dev              # Temporal dev server + Web UI, Redis, demo service,
                                      # worker, gateway; submits examples/ until Ctrl-C
    workflow-station example          # submit the examples to an already running gateway
    workflow-station run FILE --follow   # start a pipeline, draw its steps live
    workflow-station status ID | list [--status S] | cancel ID
    workflow-station worker | gateway # one process, as a deployment runs it

The gateway commands talk to GATEWAY_URL (default http://127.0.0.1:8000) with the key in
WORKFLOW_STATION_API_KEY, if any.

An existing Temporal (`TEMPORAL_ADDRESS`, or a Temporal profile: see `temporal_profile` in
settings.py) or Redis (`REDIS_URL`) is used instead of starting one. Ctrl-C stops every
process this command started, and nothing else.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from settings import (
    LATENCY_TUNED_DYNAMIC_CONFIG,
    SEARCH_ATTRIBUTES,
    Settings,
    get_settings,
    temporal_connect_config,
    uses_embedded_temporal,
)

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
EXAMPLES = ROOT / "examples"
LOOPBACK_ALLOW = "127.0.0.0/8,::1,localhost"
#: Where `make dev`'s worker serves its Prometheus page (WORKER_METRICS_ADDRESS).
DEV_WORKER_METRICS_ADDRESS = "127.0.0.1:9464"


#: SQLite in write-ahead-log mode, synced at checkpoints rather than at every commit: a
#: sequential activity measured 36 ms on the default journal, 21 ms with these. Still
#: crash-safe for the database (a power loss may drop the last commits, never corrupt it),
#: which is what a development server needs.
SQLITE_PRAGMAS = {"journal_mode": "wal", "synchronous": "normal"}


def dev_server_args() -> list[str]:
    """Flags for every embedded Temporal dev server (`make dev`, the bench, tests).

    They register the project's search attributes, apply the latency-tuned dynamic config and
    the SQLite pragmas.
    """
    args: list[str] = []
    for pragma, value in SQLITE_PRAGMAS.items():
        args += ["--sqlite-pragma", f"{pragma}={value}"]
    for name, kind in SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{name}={kind}"]
    for key, value in LATENCY_TUNED_DYNAMIC_CONFIG.items():
        args += ["--dynamic-config-value", f"{key}={value}"]
    return args


def temporal_command(settings: Settings, db_file: Path) -> list[str]:
    """The embedded dev server and Web UI. With payload encryption on, the UI decodes
    payloads through the gateway's codec endpoint, so it shows them in plain text while the
    database holds ciphertext."""
    codec = ["--ui-codec-endpoint", settings.codec_endpoint] if settings.encryption_keys else []
    return [
        str(BIN / "temporal"),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(settings.temporal_port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--namespace",
        settings.temporal_namespace,
        "--db-filename",
        str(db_file),
        "--log-level",
        "error",
        *codec,
        *dev_server_args(),
    ]


def redis_command(port: int, data_dir: Path, *, persist: bool = True) -> list[str]:
    """redis-server on loopback; `persist=False` (tests) writes no snapshot or append-only file."""
    return [
        str(BIN / "redis-server"),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes" if persist else "no",
        "--save",
        "60 1" if persist else "",
        "--protected-mode",
        "yes",
        "--loglevel",
        "warning",
    ]


def gateway_command(settings: Settings, port: int, host: str = "127.0.0.1") -> list[str]:
    """uvicorn serving the gateway, as `make dev`, the bench and the tests start it; idle
    connections kept for GATEWAY_KEEP_ALIVE_SECONDS (uvicorn's own 5 s is httpx's pool limit,
    the race described in `settings.py`)."""
    return [
        str(BIN / "uvicorn"),
        "gateway.app:create_app",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--timeout-keep-alive",
        str(settings.gateway_keep_alive_seconds),
    ]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:g}s")


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Stack:
    """Child processes in their own process groups, stopped together."""

    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        print(f"  starting {name}: {' '.join(command[:3])} … (log: {log})")
        handle = log.open("ab")
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append((name, process))

    def check(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}; see its log")

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, process in reversed(self.processes):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def submit_examples(settings: Settings) -> bool:
    """Run the bundled examples through the gateway and print what a user should see."""
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    payload: dict[str, Any] = json.loads((EXAMPLES / "dag_pipeline.json").read_text())
    payload["workflow_id"] = f"{payload['workflow_id']}-{uuid.uuid4().hex[:8]}"
    print(
        f"\n▶ POST {gateway}/execute  (examples/dag_pipeline.json, {len(payload['STEPS_CONFIG'])}"
        " steps)"
    )
    with httpx.Client(timeout=120) as http:
        response = http.post(f"{gateway}/execute", json=payload)
    result = response.json()
    ui = (
        f"http://localhost:{settings.temporal_ui_port}/namespaces/"
        f"{settings.temporal_namespace}/workflows/{payload['workflow_id']}"
    )
    print(
        f"  HTTP {response.status_code}: status={result.get('status')}"
        f" in {result.get('execution_time_ms')} ms, progress={result.get('progress')}"
    )
    for name, step in (result.get("steps") or {}).items():
        print(f"  - {name:<12} {step['status']:<10} attempts={step['attempts']}")
    print(
        "  outputs.digest =",
        json.dumps(result.get("outputs", {}).get("digest"), indent=2).replace("\n", "\n  "),
    )
    print(f"  Web UI: {ui}")
    dag_ok = result.get("status") == "completed"
    return submit_instruction_example(settings) and dag_ok


INSTRUCTION_EXAMPLE = "instructions_all_types.json"


def llm_provider(settings: Settings) -> str | None:
    """The provider the instruction example can use: OpenAI first, None when neither is set."""
    if settings.openai_api_key or settings.openai_base_url:
        return "openai"
    if settings.anthropic_api_key or settings.anthropic_base_url:
        return "anthropic"
    return None


def _short(text: Any, limit: int = 90) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _step_line(step: dict[str, Any]) -> str:
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
        f"{_short(step.get('result'))}"
    )


def submit_instruction_example(settings: Settings) -> bool:
    """Run the every-instruction-type example when an LLM provider is configured; otherwise
    say exactly what to set."""
    provider = llm_provider(settings)
    if provider is None:
        print(f"\n▶ Skipping examples/{INSTRUCTION_EXAMPLE}: no LLM provider is configured.")
        print("  Set one of these (environment or .env), then run `make dev` again:")
        print("    OPENAI_API_KEY=sk-...                        OpenAI (model gpt-5-nano)")
        print(
            "    OPENAI_BASE_URL=http://127.0.0.1:11434/v1    any OpenAI-compatible server, such"
            " as a local model server;\n"
            "                                                 also set EXAMPLE_MODEL to a model it"
            " serves"
        )
        print("    ANTHROPIC_API_KEY=sk-ant-...                 Anthropic (model claude-haiku-4-5)")
        return True
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    payload: dict[str, Any] = json.loads((EXAMPLES / INSTRUCTION_EXAMPLE).read_text())
    payload["provider"] = provider
    if settings.example_model:
        payload["model"] = settings.example_model
    model = f", model {settings.example_model}" if settings.example_model else ""
    print(
        f"\n▶ POST {gateway}/  (examples/{INSTRUCTION_EXAMPLE}, {len(payload['instructions'])}"
        f" instructions, provider {provider}{model})"
    )
    with httpx.Client(timeout=30) as http:
        response = http.post(f"{gateway}/", json=payload)
        if response.status_code != 200:
            print(f"  HTTP {response.status_code}: {response.text}")
            return False
        instance_id = response.json()["instanceId"]
        print(f"  polling GET {gateway}/?instanceId={instance_id}")
        shown: set[int] = set()
        deadline = time.monotonic() + 900
        while True:
            status = http.get(f"{gateway}/", params={"instanceId": instance_id}).json()
            for index in status["executionOrder"]:
                step = status["steps"][index]
                if index not in shown and step["status"] in ("completed", "failed"):
                    shown.add(index)
                    print(_step_line(step))
            if status["status"] in ("complete", "errored", "terminated"):
                break
            if time.monotonic() > deadline:
                print("  still running after 15 minutes; follow it in the Web UI")
                return False
            time.sleep(0.5)
    skipped = [str(step["index"]) for step in status["steps"] if step["status"] == "skipped"]
    usage = status["usage"]
    print(
        f"  status={status['status']}, skipped steps: {', '.join(skipped) or 'none'},"
        f" tokens: {usage['inputTokens']} in / {usage['outputTokens']} out"
    )
    if status.get("error"):
        print(f"  error: {status['error']['type']}: {status['error']['message']}")
    print("  output =", _short(status.get("output"), 400))
    print(
        f"  Web UI: http://localhost:{settings.temporal_ui_port}/namespaces/"
        f"{settings.temporal_namespace}/workflows/{instance_id}"
    )
    return str(status["status"]) == "complete"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def dev(settings: Settings) -> int:
    # SIGTERM/SIGHUP (a closed terminal, `timeout`, a supervisor) stop the stack like Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    data_dir = (ROOT / settings.data_dir).resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # The demo service and the example's local targets live on loopback.
    env.setdefault("OUTBOUND_ALLOW", LOOPBACK_ALLOW)
    # A developer's browser pages may call the local endpoint proxy; nowhere else by default.
    env.setdefault("CORS_ALLOW_ORIGINS", "*")
    # The worker's Prometheus page (SDK and engine metrics), next to the gateway's /metrics.
    env.setdefault("WORKER_METRICS_ADDRESS", DEV_WORKER_METRICS_ADDRESS)
    env["PYTHONUNBUFFERED"] = "1"
    stack = Stack()
    # No address in TEMPORAL_ADDRESS, `.env` or a Temporal profile: start the embedded server.
    embedded = uses_embedded_temporal(settings)
    try:
        print("Workflow Station dev stack")
        if embedded:
            if port_in_use(settings.temporal_port):
                raise RuntimeError(
                    f"port {settings.temporal_port} is taken; stop what uses it or"
                    " set TEMPORAL_ADDRESS to use that server"
                )
            stack.start(
                "temporal",
                temporal_command(settings, data_dir / "temporal.db"),
                env,
                logs / "temporal.log",
            )
        if settings.redis_url is None:
            if port_in_use(settings.redis_port):
                raise RuntimeError(
                    f"port {settings.redis_port} is taken; set REDIS_URL to use"
                    " that Redis, or REDIS_PORT to another port"
                )
            stack.start(
                "redis", redis_command(settings.redis_port, data_dir), env, logs / "redis.log"
            )
        stack.start(
            "demo",
            [
                str(BIN / "uvicorn"),
                "examples.demo_service:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(settings.demo_port),
                "--log-level",
                "warning",
            ],
            env,
            logs / "demo.log",
        )
        if embedded:
            wait_for_port(settings.temporal_port)
        stack.start(
            "worker", [sys.executable, "worker.py", "--endpoint", "all"], env, logs / "worker.log"
        )
        stack.start(
            "gateway",
            gateway_command(settings, settings.gateway_port, settings.gateway_host),
            env,
            logs / "gateway.log",
        )
        wait_for_port(settings.gateway_port)
        wait_for_port(settings.demo_port)
        deadline = time.monotonic() + 60
        health: Any = "no answer from the gateway"
        while True:
            stack.check()
            try:
                health = httpx.get(f"http://127.0.0.1:{settings.gateway_port}/health").json()
                if health.get("status") == "ok":
                    break
            except (httpx.HTTPError, ValueError):  # not up yet, or not answering JSON
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stack is not healthy after 60s: {health}")
            time.sleep(0.3)
        print(f"\n  Gateway   http://127.0.0.1:{settings.gateway_port}  (API docs: /docs)")
        if embedded:
            print(f"  Web UI    http://localhost:{settings.temporal_ui_port}")
        if settings.encryption_keys:
            print(f"  Payloads  encrypted; the Web UI decodes them at {settings.codec_endpoint}")
        print(
            f"  Temporal  {temporal_connect_config(settings)['target_host']}   Redis "
            f"{settings.effective_redis_url}"
        )
        print(
            f"  Metrics   http://127.0.0.1:{settings.gateway_port}/metrics (gateway),"
            f" http://{env['WORKER_METRICS_ADDRESS']}/metrics (worker)"
        )
        submit_examples(settings)
        print("\nThe stack keeps running; Ctrl-C stops everything it started.")
        while True:
            stack.check()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping…")
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"\nerror: {exc}\nlogs: {logs}", file=sys.stderr)
        return 1
    finally:
        stack.stop()


# -- the command line: `workflow-station …` (`python cli.py …` the same) -------------------

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
        help="the tenant's key, when the gateway has GATEWAY_API_KEYS",
        show_default=False,
    ),
]
DEFAULT_GATEWAY = "http://127.0.0.1:8000"

#: `run`'s exit codes: the shell's convention for an interrupted command when cancelled.
EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


class GatewayError(Exception):
    """The gateway answered with an error, or could not be reached."""


class Gateway:
    """The gateway's HTTP API, as the commands use it."""

    def __init__(self, url: str, api_key: str | None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # Reads wait for runs; a stream may stay quiet between events (pinged every 15 s).
        self.http = httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(60))

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise GatewayError(f"cannot reach the gateway at {self.http.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise GatewayError(f"HTTP {response.status_code}: {_detail(response)}")
        return response.json()

    def events(self, workflow_id: str, after: int = 0) -> Iterator[tuple[str, Any]]:
        """The run's SSE stream as (event, data), until the gateway closes it."""
        path = f"/runs/{quote(workflow_id, safe='')}/events"
        headers = {"Last-Event-ID": str(after)} if after else {}
        with self.http.stream("GET", path, headers=headers) as response:
            if response.status_code >= 400:
                response.read()
                raise GatewayError(f"HTTP {response.status_code}: {_detail(response)}")
            yield from read_sse(response.iter_lines())


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return response.text
    return detail if isinstance(detail, str) else json.dumps(detail)


def read_sse(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """Server-Sent Events as (event name, parsed data); comments (pings) are skipped."""
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def run_path(workflow_id: str) -> str:
    return f"/runs/{quote(workflow_id, safe='')}"


@contextmanager
def gateway_errors() -> Iterator[None]:
    """A gateway error ends the command with its message (exit 2), not a traceback."""
    try:
        yield
    except GatewayError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc


def _duration(step: dict[str, Any]) -> str:
    started, finished = step.get("started_at"), step.get("finished_at")
    if not started:
        return ""
    end = datetime.fromisoformat(finished) if finished else datetime.now(UTC)
    return f"{(end - datetime.fromisoformat(started)).total_seconds():.1f}s"


STATUS_STYLE = {
    "completed": "green",
    "running": "yellow",
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
            _short(note, 50),
        )
    return table


def progress_view(run: dict[str, Any]) -> Group:
    progress = run.get("progress") or {}
    total = progress.get("total") or len(run.get("steps") or {}) or 1
    done = sum(progress.get(k, 0) for k in ("completed", "failed", "aborted", "cancelled"))
    bar = ProgressBar(total=total, completed=done, width=60)
    line = Table.grid(padding=(0, 1))
    line.add_row(bar, f"{done}/{total} steps")
    return Group(steps_table(run), line)


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


#: A step event's new status for the step it names (`--follow` draws it at once).
STEP_EVENT_STATUS = {
    "step.started": "running",
    "step.completed": "completed",
    "step.failed": "failed",
    "step.aborted": "aborted",
}
#: `--follow` reads the run's whole status (every step's attempts and times) at most this
#: often: a fan-out's thousands of events cost a few reads, not one each.
FOLLOW_READ_SECONDS = 0.5


def apply_event(run: dict[str, Any], data: Any) -> None:
    """Update `run` (a status) with what a step event says: the step's status, the run's
    progress counts."""
    if not isinstance(data, dict):
        return
    step = (run.get("steps") or {}).get(data.get("step_name"))
    status = STEP_EVENT_STATUS.get(str(data.get("event")))
    if step is not None and status is not None:
        step["status"] = status
    if isinstance(data.get("progress"), dict):
        run["progress"] = {**(run.get("progress") or {}), **data["progress"]}


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
    client = Gateway(gateway, api_key)
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
        run = Gateway(gateway, api_key).request("GET", run_path(workflow_id))
    if as_json:
        console.print_json(json.dumps(run))
    elif isinstance(run.get("steps"), dict):
        console.print(progress_view(run))
    else:  # an instruction run
        for step in run.get("steps") or []:
            console.print(_step_line(step))
        console.print(f"status={run.get('status')}, output: {_short(run.get('output'), 200)}")


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
        runs = Gateway(gateway, api_key).request("GET", "/runs", params=params)
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
        run = Gateway(gateway, api_key).request("POST", f"{run_path(workflow_id)}/cancel")
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


if __name__ == "__main__":
    main()
