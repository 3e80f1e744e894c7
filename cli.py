"""`make dev`: the embedded stack in the foreground, then the bundled example.

    python cli.py dev          # Temporal dev server + Web UI, Redis, demo service, worker,
                               # gateway; submits examples/ and keeps running until Ctrl-C
    python cli.py example      # submit the examples to an already running gateway

An existing Temporal (`TEMPORAL_ADDRESS`) or Redis (`REDIS_URL`) is used instead of starting
one. Ctrl-C stops every process this command started, and nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from settings import LATENCY_TUNED_DYNAMIC_CONFIG, SEARCH_ATTRIBUTES, Settings, get_settings

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
EXAMPLES = ROOT / "examples"
LOOPBACK_ALLOW = "127.0.0.0/8,::1,localhost"


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
    env["PYTHONUNBUFFERED"] = "1"
    stack = Stack()
    try:
        print("Workflow Station dev stack")
        if settings.temporal_address is None:
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
        if settings.temporal_address is None:
            wait_for_port(settings.temporal_port)
        stack.start(
            "worker", [sys.executable, "worker.py", "--endpoint", "all"], env, logs / "worker.log"
        )
        stack.start(
            "gateway",
            [
                str(BIN / "uvicorn"),
                "gateway.app:create_app",
                "--factory",
                "--host",
                settings.gateway_host,
                "--port",
                str(settings.gateway_port),
            ],
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
        if settings.temporal_address is None:
            print(f"  Web UI    http://localhost:{settings.temporal_ui_port}")
        if settings.encryption_keys:
            print(f"  Payloads  encrypted; the Web UI decodes them at {settings.codec_endpoint}")
        print(
            f"  Temporal  {settings.effective_temporal_address}   Redis "
            f"{settings.effective_redis_url}"
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["dev", "example"])
    args = parser.parse_args()
    settings = get_settings()
    if args.command == "dev":
        return dev(settings)
    return 0 if submit_examples(settings) else 1


if __name__ == "__main__":
    sys.exit(main())
