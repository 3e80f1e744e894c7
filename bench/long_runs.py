"""Long and wide runs through `POST /execute`: a 10,000-step flat DAG and a 2,000-step chain.

    .venv/bin/python bench/long_runs.py            # both; --flat N / --chain N to resize

Starts its own stack (see `stack.py`) with MAX_REQUEST_BYTES raised to fit the payloads,
submits each pipeline with `?wait=false`, follows `GET /runs/{id}` until it ends, and prints
the time, the steps per second, how long one status read of the finished run takes, and how
many runs the chain continued through (from the `temporal` CLI's `workflow list`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import BIN, bench_stack  # noqa: E402


def flat(target: str, count: int, step_ms: int) -> list[dict[str, Any]]:
    return [
        {
            "step_name": f"s{i}",
            "usid": f"u{i}",
            "service_url": f"{target}/work/s{i}?ms={step_ms}",
            "method": "GET",
        }
        for i in range(count)
    ]


def chain(target: str, count: int, step_ms: int) -> list[dict[str, Any]]:
    return [
        {
            "step_name": f"s{i}",
            "usid": f"u{i}",
            "service_url": f"{target}/work/s{i}?ms={step_ms}",
            "method": "GET",
            "dependencies": [f"s{i - 1}"] if i else [],
        }
        for i in range(count)
    ]


async def run(gateway: httpx.AsyncClient, steps: list[dict[str, Any]]) -> dict[str, Any]:
    workflow_id = f"long-{uuid.uuid4().hex[:8]}"
    body = {
        "workflow_id": workflow_id,
        "namespace": "bench",
        "STEPS_CONFIG": steps,
        "PIPELINE_SETTINGS": {"error_handling": {"max_retries": 1, "retry_delay": 0.2}},
    }
    started = time.perf_counter()
    response = await gateway.post("/execute?wait=false", json=body)
    if response.status_code != 202:
        raise RuntimeError(f"{response.status_code}: {response.text[:500]}")
    while True:
        await asyncio.sleep(1.0)
        status = (await gateway.get(f"/runs/{workflow_id}")).json()
        if status["status"] != "running":
            break
    elapsed = time.perf_counter() - started
    read_started = time.perf_counter()
    await gateway.get(f"/runs/{workflow_id}")
    read = time.perf_counter() - read_started
    return {
        "workflow_id": workflow_id,
        "status": status["status"],
        "progress": status["progress"],
        "seconds": elapsed,
        "status_read_seconds": read,
    }


def runs_in_chain(temporal_address: str, workflow_id: str) -> list[str]:
    listed = subprocess.run(
        [
            str(BIN / "temporal"),
            "workflow",
            "list",
            "--address",
            temporal_address,
            "--query",
            f"WorkflowId = '{workflow_id}'",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [run["status"] for run in json.loads(listed.stdout or "[]")]


async def measure(args: argparse.Namespace, gateway_url: str, target: str, address: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=120) as gateway:
        rows = []
        for label, steps in (
            (f"flat {args.flat}", flat(target, args.flat, args.step_ms)),
            (f"chain {args.chain}", chain(target, args.chain, args.step_ms)),
        ):
            result = await run(gateway, steps)
            result["runs"] = runs_in_chain(address, result["workflow_id"])
            rows.append((label, len(steps), result))
    print(f"\nLong and wide runs, {args.step_ms} ms per call ({os.cpu_count()} cores)\n")
    header = f"{'pipeline':<14}{'status':>11}{'s':>9}{'steps/s':>9}{'status read s':>15}  runs"
    print(header)
    print("-" * (len(header) + 30))
    for label, count, result in rows:
        print(
            f"{label:<14}{result['status']:>11}{result['seconds']:>9.1f}"
            f"{count / result['seconds']:>9.1f}{result['status_read_seconds']:>15.3f}"
            f"  {len(result['runs'])} ({', '.join(sorted(set(result['runs'])))})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flat", type=int, default=10_000)
    parser.add_argument("--chain", type=int, default=2_000)
    parser.add_argument("--step-ms", type=int, default=5)
    args = parser.parse_args()
    with bench_stack({"MAX_REQUEST_BYTES": str(16 * 1024 * 1024)}) as stack:
        asyncio.run(measure(args, stack.gateway_url, stack.target_url, stack.temporal_address))


if __name__ == "__main__":
    main()
