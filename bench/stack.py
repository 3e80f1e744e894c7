"""The whole stack on free ports, for benchmarks: Temporal dev server, Redis, a worker, the
gateway and a target service whose every call sleeps `?ms=` milliseconds."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.stack import BIN, Stack, gateway_command, redis_command, temporal_command, wait_for_port  # noqa: E402
from settings import Settings  # noqa: E402
from tests.fakes.targets import free_port  # noqa: E402

TARGET_APP = """
import asyncio
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def work(request):
    await asyncio.sleep(int(request.query_params.get("ms", "50")) / 1000)
    return JSONResponse({"ok": True, "path": request.url.path})

async def items(request):
    count = request.path_params["count"]
    return JSONResponse({"items": [{"n": n} for n in range(count)]})

app = Starlette(
    routes=[
        Route("/work/{name}", work, methods=["GET", "POST"]),
        Route("/items/{count:int}", items),
    ]
)
"""


@dataclass
class BenchStack:
    gateway_url: str
    target_url: str
    temporal_address: str
    data: Path
    #: The dev server's command line: `make dev`'s own (`cli.stack.temporal_command`).
    temporal_command: list[str]
    processes: Stack
    env: dict[str, str]

    def start(self, name: str, command: list[str]) -> None:
        """Start one more process (a bare worker) with the stack's environment, stopped with it."""
        self.processes.start(name, command, self.env, self.data / f"{name}.log")

    def pid(self, name: str) -> int:
        """The process id of one of the stack's processes (`worker`, `gateway`, …)."""
        return next(process.pid for started, process in self.processes.processes if started == name)


@contextmanager
def bench_stack(env: Mapping[str, str] | None = None) -> Iterator[BenchStack]:
    """Start every process (stopped on exit); `env` adds settings for the worker and gateway."""
    data = Path(tempfile.mkdtemp(prefix="ws-bench-"))
    ports = {name: free_port() for name in ("temporal", "ui", "redis", "gateway", "target")}
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        temporal_port=ports["temporal"],
        temporal_ui_port=ports["ui"],
    )
    process_env = {
        **os.environ,
        "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
        "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "OUTBOUND_ALLOW": "127.0.0.0/8",
        "TASK_QUEUE": "bench",
        "PYTHONPATH": str(data),
        **(env or {}),
    }
    (data / "bench_target.py").write_text(TARGET_APP)
    stack = Stack()
    server = temporal_command(settings, data / "temporal.db")
    try:
        stack.start(
            "temporal",
            server,
            process_env,
            data / "temporal.log",
        )
        stack.start("redis", redis_command(ports["redis"], data), process_env, data / "redis.log")
        stack.start(
            "target",
            [
                str(BIN / "uvicorn"),
                "bench_target:app",
                "--port",
                str(ports["target"]),
                "--log-level",
                "warning",
            ],
            process_env,
            data / "target.log",
        )
        wait_for_port(ports["temporal"])
        stack.start("worker", [sys.executable, "worker.py"], process_env, data / "worker.log")
        stack.start(
            "gateway",
            [*gateway_command(settings, ports["gateway"]), "--log-level", "warning"],
            process_env,
            data / "gateway.log",
        )
        for name in ("gateway", "target", "redis"):
            wait_for_port(ports[name])
        stack.check()
        yield BenchStack(
            gateway_url=f"http://127.0.0.1:{ports['gateway']}",
            target_url=f"http://127.0.0.1:{ports['target']}",
            temporal_address=f"127.0.0.1:{ports['temporal']}",
            data=data,
            temporal_command=server,
            processes=stack,
            env=process_env,
        )
    finally:
        stack.stop()
