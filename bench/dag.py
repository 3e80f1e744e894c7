"""DAG runner overhead: the same graphs through the whole stack and through plain asyncio.

    make bench            # or: .venv/bin/python bench/dag.py --repeat 5 --step-ms 50

Starts its own stack on free ports (Temporal dev server with the latency-tuned dynamic
config, Redis, worker, gateway, a target service whose every call takes --step-ms), runs
each graph through `POST /execute`, then runs the same graph in this process with asyncio +
httpx (same dependency rule, same target), and prints both with their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli import BIN, Stack, redis_command, temporal_command, wait_for_port  # noqa: E402
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

app = Starlette(routes=[Route("/work/{name}", work, methods=["GET", "POST"])])
"""


def graph(
    levels: int, width: int, target: str, step_ms: int, outputs: bool = True
) -> list[dict[str, Any]]:
    """`levels` x `width` steps; each step depends on two steps of the level above."""
    steps = []
    for level in range(levels):
        for i in range(width):
            deps = []
            if level:
                deps = sorted({f"s{level - 1}_{i}", f"s{level - 1}_{(i + 1) % width}"})
            steps.append(
                {
                    "step_name": f"s{level}_{i}",
                    "usid": f"u{level}_{i}",
                    "service_url": f"{target}/work/s{level}_{i}?ms={step_ms}",
                    "dependencies": deps,
                    "outputs": [f"o{level}_{i}"] if outputs else [],
                    "input_prep_config": {"body": {"level": level}},
                }
            )
    return steps


async def run_plain(steps: list[dict[str, Any]], http: httpx.AsyncClient) -> float:
    """The baseline: start each step when its dependencies are done, with asyncio + httpx."""
    started = time.perf_counter()
    done: dict[str, asyncio.Task[Any]] = {}

    async def step(config: dict[str, Any]) -> Any:
        await asyncio.gather(*(done[d] for d in config["dependencies"]))
        response = await http.post(config["service_url"], json=config["input_prep_config"]["body"])
        response.raise_for_status()
        return response.json()

    for config in steps:
        done[config["step_name"]] = asyncio.create_task(step(config))
    await asyncio.gather(*done.values())
    return time.perf_counter() - started


async def run_engine(steps: list[dict[str, Any]], gateway: httpx.AsyncClient) -> float:
    payload = {
        "workflow_id": f"bench-{uuid.uuid4().hex[:10]}",
        "namespace": "bench",
        "STEPS_CONFIG": steps,
        "PIPELINE_SETTINGS": {"error_handling": {"max_retries": 0}},
    }
    started = time.perf_counter()
    response = await gateway.post("/execute", json=payload)
    elapsed = time.perf_counter() - started
    result = response.json()
    if result.get("status") != "completed":
        raise RuntimeError(f"benchmark run did not complete: {result}")
    return elapsed


async def measure(args: argparse.Namespace, gateway_url: str, target: str) -> None:
    shapes = [("3 levels x 10", 3, 10), ("chain of 10", 10, 1), ("single step", 1, 1)]
    rows = []
    async with (
        httpx.AsyncClient(base_url=gateway_url, timeout=300) as gateway,
        httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=100)) as http,
    ):
        await run_engine(graph(1, 1, target, 1), gateway)  # warm-up: worker caches, pools
        for label, levels, width in shapes:
            steps = graph(levels, width, target, args.step_ms, not args.no_outputs)
            engine = [await run_engine(steps, gateway) for _ in range(args.repeat)]
            plain = [await run_plain(steps, http) for _ in range(args.repeat)]
            rows.append(
                (label, len(steps), levels, statistics.median(engine), statistics.median(plain))
            )
    print(
        f"\nDAG runner vs plain asyncio+httpx, {args.step_ms} ms per call, median of"
        f" {args.repeat} ({os.cpu_count()} cores)\n"
    )
    header = (
        f"{'graph':<15}{'steps':>6}{'engine s':>10}{'plain s':>10}{'ratio':>8}"
        f"{'overhead/step ms':>18}{'overhead/level ms':>19}"
    )
    print(header)
    print("-" * len(header))
    for label, count, levels, engine_s, plain_s in rows:
        overhead = engine_s - plain_s
        print(
            f"{label:<15}{count:>6}{engine_s:>10.3f}{plain_s:>10.3f}"
            f"{engine_s / plain_s:>8.2f}{overhead / count * 1000:>18.1f}"
            f"{overhead / levels * 1000:>19.1f}"
        )
    print(
        "\noverhead/level: extra wall time per step on the critical path (scheduling, history,"
        " Redis writes, the gateway round trip spread over the levels)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--step-ms", type=int, default=50)
    parser.add_argument(
        "--no-outputs", action="store_true", help="steps declare no outputs (no Redis writes)"
    )
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="ws-bench-"))
    ports = {name: free_port() for name in ("temporal", "ui", "redis", "gateway", "target")}
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        temporal_port=ports["temporal"],
        temporal_ui_port=ports["ui"],
    )
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
        "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "OUTBOUND_ALLOW": "127.0.0.0/8",
        "TASK_QUEUE": "bench",
        "PYTHONPATH": str(data),
    }
    (data / "bench_target.py").write_text(TARGET_APP)
    stack = Stack()
    try:
        stack.start(
            "temporal", temporal_command(settings, data / "temporal.db"), env, data / "temporal.log"
        )
        stack.start("redis", redis_command(ports["redis"], data), env, data / "redis.log")
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
            env,
            data / "target.log",
        )
        wait_for_port(ports["temporal"])
        stack.start("worker", [sys.executable, "worker.py"], env, data / "worker.log")
        stack.start(
            "gateway",
            [
                str(BIN / "uvicorn"),
                "gateway.app:create_app",
                "--factory",
                "--port",
                str(ports["gateway"]),
                "--log-level",
                "warning",
            ],
            env,
            data / "gateway.log",
        )
        for name in ("gateway", "target", "redis"):
            wait_for_port(ports[name])
        stack.check()
        asyncio.run(
            measure(
                args, f"http://127.0.0.1:{ports['gateway']}", f"http://127.0.0.1:{ports['target']}"
            )
        )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
