"""The processes fault tests start, kill and restart: `worker.py`, a Temporal dev server on a
database file of its own, and a persistent redis-server.

Each listens on loopback only, on ports of its own that survive a restart, and is stopped by
its own pid (never by name). The command lines are `cli.stack`'s, as `make dev` runs them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from temporalio.client import Client

from cli.stack import gateway_command, redis_command, temporal_command, wait_for_port
from settings import Settings
from tests.conftest import LOOPBACK, wait_until
from tests.fakes.targets import free_port

ROOT = Path(__file__).resolve().parents[2]

#: How long a process may take to listen; generous, for a loaded 2-core CI machine.
START_TIMEOUT = 60.0


def worker_process(
    settings: Settings,
    log: Path | None = None,
    *,
    args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """A real `worker.py` process serving `settings.task_queue` (and what `args` add, e.g.
    `--endpoint all`), with `extra_env` over its environment; its output goes to `log`."""
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.effective_temporal_address,
        "REDIS_URL": settings.effective_redis_url,
        "TASK_QUEUE": settings.task_queue,
        "ENDPOINT_WORKERS": ",".join(settings.endpoint_workers),
        "OUTBOUND_ALLOW": ",".join(LOOPBACK),
        **(extra_env or {}),
    }
    command = [sys.executable, "worker.py", *args]
    if log is None:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    with log.open("ab") as output:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)


def gateway_process(
    settings: Settings, port: int, log: Path, extra_env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A real gateway process (uvicorn, as `make dev` runs it) on loopback `port`, starting
    runs on `settings.task_queue`; its output goes to `log`."""
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.effective_temporal_address,
        "REDIS_URL": settings.effective_redis_url,
        "TASK_QUEUE": settings.task_queue,
        "TENANT_REQUESTS_PER_SECOND": "0",
        **(extra_env or {}),
    }
    command = gateway_command(settings, port)
    with log.open("ab") as output:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)


def stop(process: subprocess.Popen[bytes] | None, *, kill: bool = False) -> None:
    """End a process this test started: SIGKILL when `kill`, else SIGTERM (SIGKILL after 10 s)."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


async def listening(port: int, timeout: float = START_TIMEOUT) -> None:
    """Wait until something listens on loopback `port`, without blocking the event loop
    (the tests' own HTTP targets run in it)."""
    await asyncio.to_thread(wait_for_port, port, "127.0.0.1", timeout)


class DevServer:
    """A Temporal dev server with its state in `directory/temporal.db`, on fixed ports, so it
    can be SIGKILLed and started again on the same database and address."""

    def __init__(self, directory: Path) -> None:
        self.settings = Settings(
            temporal_port=free_port(),
            temporal_ui_port=free_port(),
            _env_file=None,  # type: ignore[call-arg]
        )
        self.db_file = directory / "temporal.db"
        self.log = directory / "temporal.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return self.settings.effective_temporal_address

    async def start(self) -> None:
        # Headless: the Web UI is of no use to a test and would only take a port and memory.
        command = [*temporal_command(self.settings, self.db_file), "--headless"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        await listening(self.settings.temporal_port)
        await self.serving()

    async def serving(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until the server answers a client: its port opens before its frontend is
        ready ("Frontend is not healthy yet"), more so on a database it starts again on."""

        async def connects() -> bool:
            try:
                await Client.connect(self.address)
            except RuntimeError:
                return False
            return True

        await wait_until(connects, timeout)

    def kill(self) -> None:
        stop(self.process, kill=True)

    def stop(self) -> None:
        stop(self.process)


class RedisServer:
    """A redis-server on a fixed port, persisting to `directory` (append-only file), so it can
    be stopped and started again with every key it held."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = subprocess.Popen(
            redis_command(self.port, self.directory, persist=True), stdout=subprocess.DEVNULL
        )
        await listening(self.port)

    def stop(self) -> None:
        """SIGTERM: redis-server writes its append-only file out and exits."""
        stop(self.process)
