"""Large responses through a run: time and memory of a step answering N MB of JSON.

    .venv/bin/python bench/payloads.py                  # 10 MB and 32 MB
    .venv/bin/python bench/payloads.py --sizes 16 32 --shape floats

For each size, a fresh worker and gateway (so each peak is its own) run a two-step DAG through
`POST /execute`: `fetch` GETs N MB of JSON (output `doc`), `digest` POSTs `{"doc": "{{doc}}"}`
to a target that checks it received the whole value. `--shape`: 1 KiB records (documents),
arrays of 1536 floats (embeddings) or ~40-byte records (what costs a Python process most).

Prints the run's wall time, how long `GET /runs/{id}` and `GET /runs/{id}/outputs/doc` take,
the peak resident memory (VmHWM) of the worker and the gateway, and what Redis holds
afterwards. OUTBOUND_MAX_RESPONSE_BYTES is set 25 % above the largest size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from temporalio.api.enums.v1 import EventType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.stack import BIN, Stack, redis_command, temporal_command, wait_for_port  # noqa: E402
from settings import Settings, connect_temporal  # noqa: E402
from tests.fakes.targets import free_port  # noqa: E402

MB = 1024 * 1024

TARGET_APP = """
import functools, json, random
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

def build(size, shape):
    rng = random.Random(size)
    if shape == "records":  # 1 KiB records: a page of documents
        return {"count": size // 1024,
                "items": [{"n": n, "text": f"{n:08d}" + "x" * 990} for n in range(size // 1024)]}
    if shape == "floats":  # embeddings: 1536 floats each
        return {"data": [[rng.random() for _ in range(1536)] for _ in range(size // 31_200)]}
    if shape == "small":  # many small records
        return [{"id": n, "name": f"item {n}", "ok": True} for n in range(size // 51)]
    raise ValueError(shape)

@functools.lru_cache(maxsize=2)
def document(size, shape):
    value = build(size, shape)
    return value, json.dumps(value).encode()

async def fetch(request):
    size, shape = int(request.path_params["size"]), request.path_params["shape"]
    return Response(document(size, shape)[1], media_type="application/json")

async def digest(request):
    body = await request.body()
    sent = json.loads(body)
    whole = sent["doc"] == document(sent["size"], sent["shape"])[0]
    return JSONResponse({"bytes": len(body), "whole": whole})

app = Starlette(
    routes=[
        Route("/json/{shape}/{size:int}", fetch),
        Route("/digest", digest, methods=["POST"]),
    ]
)
"""


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pipeline(size: int, shape: str, target: str) -> dict[str, Any]:
    return {
        "workflow_id": f"bench-payload-{uuid.uuid4().hex[:10]}",
        "namespace": "bench",
        "STEPS_CONFIG": [
            {
                "step_name": "fetch",
                "usid": "u-fetch",
                "method": "GET",
                "service_url": f"{target}/json/{shape}/{size}",
                "outputs": ["doc"],
            },
            {
                "step_name": "digest",
                "usid": "u-digest",
                "service_url": f"{target}/digest",
                "dependencies": ["fetch"],
                "outputs": ["check"],
                "input_prep_config": {"body": {"doc": "{{doc}}", "size": size, "shape": shape}},
            },
        ],
        "PIPELINE_SETTINGS": {
            "error_handling": {"max_retries": 0},
            "timeouts": {"step_timeout": 120},
        },
    }


async def timed(call: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = await call
    return result, time.perf_counter() - started


async def measure_one(
    size: int, shape: str, gateway_url: str, target: str, redis_url: str, temporal_address: str
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=600) as gateway:
        # Warm-up: the worker's first run loads the workflow sandbox.
        await gateway.post("/execute", json=pipeline(100_000, shape, target))
        payload = pipeline(size, shape, target)
        response, run_s = await timed(gateway.post("/execute", json=payload))
        result = response.json()
        if result.get("status") != "completed":
            raise RuntimeError(f"the {size // MB} MB run did not complete: {result.get('error')}")
        if not result["outputs"]["check"]["whole"]:
            raise RuntimeError("the dependent step did not receive the whole value")
        workflow_id = payload["workflow_id"]
        status, status_s = await timed(gateway.get(f"/runs/{workflow_id}"))
        output, output_s = await timed(gateway.get(f"/runs/{workflow_id}/outputs/doc"))
        output.raise_for_status()
    settings = Settings(_env_file=None, temporal_address=temporal_address, redis_url=redis_url)  # type: ignore[call-arg]
    client = await connect_temporal(settings)
    started_at: datetime | None = None
    longest_task = 0.0
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            started_at = event.event_time.ToDatetime()
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and started_at:
            took = (event.event_time.ToDatetime() - started_at).total_seconds()
            longest_task = max(longest_task, took)
    redis = Redis.from_url(redis_url)
    try:
        memory = await redis.info("memory")
        blob_bytes = 0
        async for key in redis.scan_iter("workflow-station:blob:*"):
            blob_bytes += await redis.strlen(key)
    finally:
        await redis.aclose()
    return {
        "run_s": run_s,
        "task_s": longest_task,
        "status_s": status_s,
        "status_bytes": len(status.content),
        "output_s": output_s,
        "output_bytes": len(output.content),
        "redis_mb": memory["used_memory"] / MB,
        "blob_mb": blob_bytes / MB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 32], help="MB")
    parser.add_argument(
        "--shape",
        choices=["records", "floats", "small"],
        default="records",
        help="1 KiB records, arrays of 1536 floats, or ~40-byte records",
    )
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="ws-bench-payloads-"))
    ports = {name: free_port() for name in ("temporal", "ui", "redis", "target")}
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        temporal_port=ports["temporal"],
        temporal_ui_port=ports["ui"],
    )
    redis_url = f"redis://127.0.0.1:{ports['redis']}/0"
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
        "REDIS_URL": redis_url,
        "OUTBOUND_ALLOW": "127.0.0.0/8",
        "OUTBOUND_MAX_RESPONSE_BYTES": str(max(args.sizes) * MB * 5 // 4),
        "PYTHONPATH": str(data),
    }
    (data / "bench_target.py").write_text(TARGET_APP)
    target = f"http://127.0.0.1:{ports['target']}"
    stack = Stack()
    rows = []
    try:
        stack.start(
            "temporal", temporal_command(settings, data / "temporal.db"), env, data / "temporal.log"
        )
        stack.start("redis", redis_command(ports["redis"], data), env, data / "redis.log")
        stack.start(
            "target",
            [str(BIN / "uvicorn"), "bench_target:app", "--port", str(ports["target"])],
            env,
            data / "target.log",
        )
        for name in ("temporal", "redis", "target"):
            wait_for_port(ports[name])
        for size in args.sizes:
            # A worker and gateway of their own per size, so each peak is this size's.
            gateway_port = free_port()
            queue = {**env, "TASK_QUEUE": f"bench-{size}"}
            round_stack = Stack()
            try:
                round_stack.start("worker", [sys.executable, "worker.py"], queue, data / "w.log")
                round_stack.start(
                    "gateway",
                    [
                        str(BIN / "uvicorn"),
                        "gateway.app:create_app",
                        "--factory",
                        "--port",
                        str(gateway_port),
                        "--log-level",
                        "warning",
                    ],
                    queue,
                    data / "gateway.log",
                )
                wait_for_port(gateway_port)
                [(_, worker), (_, gateway)] = round_stack.processes
                idle = peak_rss_mb(worker.pid), peak_rss_mb(gateway.pid)
                row = asyncio.run(
                    measure_one(
                        size * MB,
                        args.shape,
                        f"http://127.0.0.1:{gateway_port}",
                        target,
                        redis_url,
                        env["TEMPORAL_ADDRESS"],
                    )
                )
                round_stack.check()
                row.update(
                    size=size,
                    worker_idle=idle[0],
                    worker_peak=peak_rss_mb(worker.pid),
                    gateway_idle=idle[1],
                    gateway_peak=peak_rss_mb(gateway.pid),
                )
                rows.append(row)
            finally:
                round_stack.stop()
    finally:
        stack.stop()

    print(
        f"\nA step answering N MB of JSON ({args.shape}), passed whole to the next step"
        f" ({os.cpu_count()} cores)\n"
    )
    header = (
        f"{'MB':>4}{'run s':>8}{'task s':>8}{'GET /runs ms':>14}{'status B':>10}"
        f"{'GET output s':>14}"
        f"{'worker MB (idle→peak)':>24}{'gateway MB (idle→peak)':>25}{'blobs MB':>10}"
        f"{'Redis MB':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['size']:>4}{row['run_s']:>8.2f}{row['task_s']:>8.2f}"
            f"{row['status_s'] * 1000:>14.0f}"
            f"{row['status_bytes']:>10}{row['output_s']:>14.2f}"
            f"{row['worker_idle']:>12.0f} → {row['worker_peak']:<9.0f}"
            f"{row['gateway_idle']:>13.0f} → {row['gateway_peak']:<9.0f}"
            f"{row['blob_mb']:>10.0f}{row['redis_mb']:>10.0f}"
        )
    print(
        "\ntask s: the longest workflow task (started to completed, blob reads and writes"
        " included); past 2 s of workflow code the SDK reports a deadlock."
    )
    print(
        "blobs/Redis: cumulative over the sizes run (blobs live PAYLOAD_BLOB_TTL_SECONDS,"
        " outputs OUTPUT_TTL_SECONDS)."
    )


if __name__ == "__main__":
    main()
