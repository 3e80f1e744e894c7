"""How fast a cancel, an approval, a pause and a run's deadline reach a run whose 20 s step is
running, per execution mode, through `POST /execute` on a stack of its own (see `stack.py`).

    .venv/bin/python bench/control_latency.py          # --repeat N, --step-ms MS

In `auto` and `fast` the step is a local activity, which holds the workflow task open
(`workflows.shared.control`); `durable` runs it as a regular activity and is the baseline.
For each mode it prints the cancel latency (from `POST /runs/{id}/cancel` until the run has
ended cancelled, read from Temporal), the approval and pause latencies (from the request
until its answer: both are Updates, answered once the run has taken them; the approval is for
a step waiting beside the running one) and the deadline overshoot (a 3 s `run_timeout`: how long
after 3 s the run ended timed out), the median and the worst of `--repeat` runs; then what the
prompt control costs: the workflow tasks and wall time of a short 3-step run with the default
(6 h) deadline and with a short one, and the workflow tasks of the 20 s step (a heartbeat
every 0.8 s in `auto` and `fast`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import bench_stack  # noqa: E402

MODES = ("durable", "auto", "fast")
RUN_TIMEOUT = 3.0


def pipeline(
    target: str, mode: str, step_ms: int, steps: int = 1, run_timeout: float | None = None
) -> dict[str, Any]:
    timeouts: dict[str, Any] = {"step_timeout": 30}
    if run_timeout is not None:
        timeouts["run_timeout"] = run_timeout
    return {
        "workflow_id": f"control-{mode}-{uuid.uuid4().hex[:8]}",
        "namespace": "bench",
        "STEPS_CONFIG": [
            {
                "step_name": f"s{i}",
                "usid": f"u{i}",
                "service_url": f"{target}/work/s{i}?ms={step_ms}",
                "method": "GET",
                "dependencies": [f"s{i - 1}"] if i else [],
            }
            for i in range(steps)
        ],
        "PIPELINE_SETTINGS": {
            "execution": {"mode": mode},
            "timeouts": timeouts,
            "error_handling": {"max_retries": 0},
        },
    }


def beside_an_approval(body: dict[str, Any]) -> dict[str, Any]:
    """The pipeline with an approval step waiting from the start, beside its steps."""
    review = {"step_name": "review", "usid": "u-review", "type": "approval"}
    body["STEPS_CONFIG"].append(review | {"approval": {"message": "Go on?"}})
    return body


async def start(gateway: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await gateway.post("/execute?wait=false", json=body)
    if response.status_code != 202:
        raise RuntimeError(f"{response.status_code}: {response.text[:500]}")


async def ended(client: Client, workflow_id: str) -> str:
    """How the run ended, once it has."""
    try:
        await client.get_workflow_handle(workflow_id).result()
    except WorkflowFailureError as exc:
        return type(exc.cause).__name__
    return "completed"


async def step_in(gateway: httpx.AsyncClient, workflow_id: str, step: str, state: str) -> None:
    while True:
        status = (await gateway.get(f"/runs/{workflow_id}")).json()
        if (status.get("steps") or {}).get(step, {}).get("status") == state:
            return
        await asyncio.sleep(0.02)


async def cancel_latency(
    gateway: httpx.AsyncClient, client: Client, target: str, mode: str, step_ms: int
) -> float:
    body = pipeline(target, mode, step_ms)
    await start(gateway, body)
    await step_in(gateway, body["workflow_id"], "s0", "running")
    await asyncio.sleep(1.0)  # well inside the step, between two of its heartbeats
    asked = time.perf_counter()
    response = await gateway.post(f"/runs/{body['workflow_id']}/cancel")
    response.raise_for_status()
    how = await ended(client, body["workflow_id"])
    if how != "CancelledError":
        raise RuntimeError(f"{mode}: the cancelled run ended {how}")
    return time.perf_counter() - asked


async def update_latency(
    gateway: httpx.AsyncClient, client: Client, target: str, mode: str, step_ms: int, what: str
) -> float:
    """From `POST .../approve` (for a step waiting beside the running one) or `POST .../pause`
    until its answer; then the run is cancelled."""
    body = beside_an_approval(pipeline(target, mode, step_ms))
    workflow_id = body["workflow_id"]
    await start(gateway, body)
    await step_in(gateway, workflow_id, "s0", "running")
    await step_in(gateway, workflow_id, "review", "waiting")
    await asyncio.sleep(1.0)
    asked = time.perf_counter()
    if what == "approve":
        decision = {"decision": "approve"}
        response = await gateway.post(f"/runs/{workflow_id}/steps/review/approve", json=decision)
    else:
        response = await gateway.post(f"/runs/{workflow_id}/pause")
    took = time.perf_counter() - asked
    response.raise_for_status()
    (await gateway.post(f"/runs/{workflow_id}/cancel")).raise_for_status()
    await ended(client, workflow_id)
    return took


async def deadline_overshoot(
    gateway: httpx.AsyncClient, client: Client, target: str, mode: str, step_ms: int
) -> float:
    body = pipeline(target, mode, step_ms, run_timeout=RUN_TIMEOUT)
    started = time.perf_counter()
    await start(gateway, body)
    how = await ended(client, body["workflow_id"])
    if how != "ApplicationError":
        raise RuntimeError(f"{mode}: the timed-out run ended {how}")
    return time.perf_counter() - started - RUN_TIMEOUT


async def tasks_and_time(
    gateway: httpx.AsyncClient, client: Client, body: dict[str, Any]
) -> tuple[int, float]:
    """The workflow tasks the run's history holds (every run of a chain is one here), and
    how long it took from submission to its end."""
    started = time.perf_counter()
    await start(gateway, body)
    await ended(client, body["workflow_id"])
    took = time.perf_counter() - started
    history = await client.get_workflow_handle(body["workflow_id"]).fetch_history()
    tasks = sum(
        event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for event in history.events
    )
    return tasks, took


def cell(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} / {max(values):5.2f}"


async def measure(args: argparse.Namespace, gateway_url: str, target: str, address: str) -> None:
    client = await Client.connect(address)
    rows: list[tuple[str, list[float], list[float], list[float], list[float]]] = []
    costs: list[tuple[str, str, int, float]] = []
    async with httpx.AsyncClient(base_url=gateway_url, timeout=120) as gateway:
        for mode in MODES:
            cancels, approvals, pauses, overshoots = [], [], [], []
            for _ in range(args.repeat):
                cancels.append(await cancel_latency(gateway, client, target, mode, args.step_ms))
                for what, into in (("approve", approvals), ("pause", pauses)):
                    into.append(
                        await update_latency(gateway, client, target, mode, args.step_ms, what)
                    )
                overshoots.append(
                    await deadline_overshoot(gateway, client, target, mode, args.step_ms)
                )
            rows.append((mode, cancels, approvals, pauses, overshoots))
        for mode in MODES:
            for label, body in (
                ("3 x 10 ms, 6 h deadline", pipeline(target, mode, 10, steps=3)),
                ("3 x 10 ms, 30 s deadline", pipeline(target, mode, 10, steps=3, run_timeout=30)),
                (f"1 x {args.step_ms} ms step", pipeline(target, mode, args.step_ms)),
            ):
                medians = [
                    await tasks_and_time(
                        gateway, client, body | {"workflow_id": f"{body['workflow_id']}-{i}"}
                    )
                    for i in range(args.repeat)
                ]
                tasks = medians[-1][0]
                costs.append((mode, label, tasks, statistics.median(t for _, t in medians)))
    print(
        f"\nControl latency, a {args.step_ms / 1000:g} s step running, {args.repeat} runs each"
        " (median / worst, seconds)\n"
    )
    header = (
        f"{'mode':<9}{'cancel':>16}{'approve':>16}{'pause':>16}{'deadline overshoot (3 s)':>28}"
    )
    print(header)
    print("-" * len(header))
    for mode, cancels, approvals, pauses, overshoots in rows:
        print(
            f"{mode:<9}{cell(cancels):>16}{cell(approvals):>16}{cell(pauses):>16}"
            f"{cell(overshoots):>28}"
        )
    print("\nWhat it costs: workflow tasks and wall time (median) per run\n")
    header = f"{'mode':<9}{'run':<27}{'workflow tasks':>15}{'wall s':>9}"
    print(header)
    print("-" * len(header))
    for mode, label, tasks, took in costs:
        print(f"{mode:<9}{label:<27}{tasks:>15}{took:>9.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--step-ms", type=int, default=20_000)
    args = parser.parse_args()
    with bench_stack() as stack:
        asyncio.run(measure(args, stack.gateway_url, stack.target_url, stack.temporal_address))


if __name__ == "__main__":
    main()
