"""`map_over` at scale through `POST /execute`: the parent's history, the time, the worker's
memory, and the same work as a plain fan-out of steps where the step limit allows one.

    .venv/bin/python bench/map_over.py                  # every case below
    .venv/bin/python bench/map_over.py --items 10000 --huge 0   # one map only

Cases: a map and a fan-out of `--compare` items (500: both can); a map of `--items` (10,000)
with concurrency 50; a map of `--huge` (100,000) small items in a fresh stack, so the
worker's peak RSS (VmHWM) is that run's. Each call sleeps `--item-ms` in the target. Parent
events are read from Temporal's history API, batch workflows counted by `ParentWorkflowId`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))

from payloads import peak_rss_mb  # noqa: E402
from stack import BenchStack, bench_stack  # noqa: E402


def map_pipeline(target: str, count: int, concurrency: int, mode: str) -> dict[str, Any]:
    """`fetch` answers `count` items, `each` calls the target once per item. The list comes
    from a step, not the run's input: a run's input is validated whole as the run's first
    workflow task decodes it, and 100,000 items in it (1.2 MB) took 1.5 s of that task under
    this machine's load, near the SDK's 2 s deadlock check."""
    origin = target.split("/work/")[0]
    return {
        "workflow_id": f"bench-map-{uuid.uuid4().hex[:8]}",
        "namespace": "bench",
        "STEPS_CONFIG": [
            {
                "step_name": "fetch",
                "usid": "u-fetch",
                "method": "GET",
                "service_url": f"{origin}/items/{count}",
            },
            {
                "step_name": "each",
                "usid": "u-each",
                "dependencies": ["fetch"],
                "method": "GET",
                "service_url": f"{target}&n={{{{item.n}}}}",
                "map_over": "{{fetch_result.items}}",
                "map": {"concurrency": concurrency},
            },
        ],
        "PIPELINE_SETTINGS": {
            "error_handling": {"max_retries": 1, "retry_delay": 0.2},
            "execution": {"mode": mode},
        },
    }


def fan_out_pipeline(target: str, count: int, concurrency: int, mode: str) -> dict[str, Any]:
    """The same calls as `count` independent steps (what a map replaces)."""
    return {
        "workflow_id": f"bench-fan-{uuid.uuid4().hex[:8]}",
        "namespace": "bench",
        "STEPS_CONFIG": [
            {
                "step_name": f"s{n}",
                "usid": f"u{n}",
                "method": "GET",
                "service_url": f"{target}&n={n}",
            }
            for n in range(count)
        ],
        "PIPELINE_SETTINGS": {
            "error_handling": {"max_retries": 1, "retry_delay": 0.2},
            "execution": {"mode": mode},
            "concurrency": {"max_parallel": concurrency},
        },
    }


async def run(gateway: httpx.AsyncClient, temporal: Client, body: dict[str, Any]) -> dict[str, Any]:
    workflow_id = body["workflow_id"]
    started = time.perf_counter()
    response = await gateway.post("/execute?wait=false", json=body)
    if response.status_code != 202:
        raise RuntimeError(f"{response.status_code}: {response.text[:500]}")
    while True:
        await asyncio.sleep(0.5)
        status = (await gateway.get(f"/runs/{workflow_id}")).json()
        if status["status"] != "running":
            break
    elapsed = time.perf_counter() - started
    history = await temporal.get_workflow_handle(workflow_id).fetch_history()
    batches = [
        execution
        async for execution in temporal.list_workflows(
            f"ParentWorkflowId = '{workflow_id}' AND WorkflowType = 'MapBatchWorkflow'"
        )
    ]
    steps = status["steps"]
    items = steps["each"]["items"] if "each" in steps else None
    return {
        "status": status["status"],
        "seconds": elapsed,
        "events": len(history.events),
        "batches": len(batches),
        "items": items,
    }


async def measure(
    cases: list[tuple[str, int, dict[str, Any]]], stack: BenchStack, target: str
) -> list[dict[str, Any]]:
    """Run each case in turn on `stack`, after an unmeasured warm-up run."""
    worker = stack.pid("worker")
    rows = []
    temporal = await Client.connect(stack.temporal_address)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=120) as gateway:
        # The first run of a fresh worker pays for imports and connections: not measured.
        await run(gateway, temporal, map_pipeline(target, 20, 5, "durable"))
        for label, count, body in cases:
            result = await run(gateway, temporal, body)
            result.update(label=label, count=count, worker_peak_mb=peak_rss_mb(worker))
            rows.append(result)
            print(f"  {label}: {result}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare", type=int, default=500)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--huge", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--item-ms", type=int, default=5)
    parser.add_argument("--mode", default="durable", choices=["durable", "fast", "auto"])
    parser.add_argument("--huge-mode", default="fast", choices=["durable", "fast", "auto"])
    parser.add_argument(
        "--huge-without-deadlock-check",
        action="store_true",
        help="run the --huge map's worker with TEMPORAL_DEBUG=1 (no 2 s deadlock check): on a"
        " machine loaded by other work, the task that receives 100,000 items may take longer",
    )
    args = parser.parse_args()
    env = {"MAX_REQUEST_BYTES": str(32 * 1024 * 1024)}
    rows: list[dict[str, Any]] = []

    with bench_stack(env) as stack:
        url = f"{stack.target_url}/work/item?ms={args.item_ms}"
        c, m = args.concurrency, args.mode
        cases = []
        if args.compare:
            cases += [
                (f"map {args.compare} ({m})", args.compare, map_pipeline(url, args.compare, c, m)),
                (
                    f"fan-out {args.compare} ({m})",
                    args.compare,
                    fan_out_pipeline(url, args.compare, c, m),
                ),
            ]
        if args.items:
            cases.append(
                (f"map {args.items} ({m})", args.items, map_pipeline(url, args.items, c, m))
            )
        rows += asyncio.run(measure(cases, stack, url))
    if args.huge:
        huge_env = {**env, "TEMPORAL_DEBUG": "1"} if args.huge_without_deadlock_check else env
        with bench_stack(huge_env) as stack:
            url = f"{stack.target_url}/work/item?ms={args.item_ms}"
            body = map_pipeline(url, args.huge, args.concurrency, args.huge_mode)
            label = f"map {args.huge} ({args.huge_mode})"
            rows += asyncio.run(measure([(label, args.huge, body)], stack, url))
    print(
        f"\nmap_over, {args.item_ms} ms per call, concurrency {args.concurrency}"
        f" ({os.cpu_count()} cores)\n"
    )
    header = (
        f"{'case':<26}{'status':>10}{'s':>8}{'items/s':>9}{'parent events':>15}"
        f"{'batches':>9}{'worker peak MB':>16}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['label']:<26}{row['status']:>10}{row['seconds']:>8.1f}"
            f"{row['count'] / row['seconds']:>9.0f}{row['events']:>15}{row['batches']:>9}"
            f"{row['worker_peak_mb']:>16.0f}"
        )


if __name__ == "__main__":
    main()
