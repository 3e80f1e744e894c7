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
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import bench_stack  # noqa: E402


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


async def run_engine(
    steps: list[dict[str, Any]], gateway: httpx.AsyncClient, mode: str | None = None
) -> float:
    settings: dict[str, Any] = {"error_handling": {"max_retries": 0}}
    if mode is not None:
        settings["execution"] = {"mode": mode}
    payload = {
        "workflow_id": f"bench-{uuid.uuid4().hex[:10]}",
        "namespace": "bench",
        "STEPS_CONFIG": steps,
        "PIPELINE_SETTINGS": settings,
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
            engine = [await run_engine(steps, gateway, args.mode) for _ in range(args.repeat)]
            plain = [await run_plain(steps, http) for _ in range(args.repeat)]
            rows.append(
                (label, len(steps), levels, statistics.median(engine), statistics.median(plain))
            )
    print(
        f"\nDAG runner ({args.mode or 'default'} mode) vs plain asyncio+httpx, {args.step_ms} ms"
        f" per call, median of {args.repeat} ({os.cpu_count()} cores)\n"
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
    parser.add_argument(
        "--mode", choices=["durable", "fast", "auto"], help="PIPELINE_SETTINGS.execution.mode"
    )
    args = parser.parse_args()

    with bench_stack() as stack:
        asyncio.run(measure(args, stack.gateway_url, stack.target_url))


if __name__ == "__main__":
    main()
