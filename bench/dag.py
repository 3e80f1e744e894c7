"""The engine against the limit, in one run: every contender side by side on one dev server.

    make bench                                  # .venv/bin/python bench/dag.py
    .venv/bin/python bench/dag.py --quick       # smoke run: repeat 1, no 1,000 fan-out,
                                                # no 100-concurrent throughput
    .venv/bin/python bench/dag.py --modes durable,fast --repeat 5 --name before-change
    .venv/bin/python bench/dag.py --status-only --name status    # GET /runs/{id} alone
    make bench-compare                          # the same plus Prefect 3.9 from its own venv

Starts its own stack on free ports (`stack.py`: the dev server with `make dev`'s command
line, Redis, worker, gateway, a target whose every call takes `?ms=` milliseconds) and a bare
temporalio worker in its own process (`bare_worker.py`) on the same server. For each graph of
`graphs.SHAPES` it times, in turns, median of `--repeat`:

- the engine through the gateway (`POST /execute`), once per execution mode of `--modes`
  (`PIPELINE_SETTINGS.execution.mode`). An engine without execution modes (its OpenAPI
  schema has no `PIPELINE_SETTINGS.execution`) runs once as `engine`, and each mode shows
  as unsupported; so does a mode the engine answers with 422.
- the bare worker: the same calls as regular activities (`bare:activity`) and as local
  activities (`bare:local`), started and awaited from this process with a Temporal client.
- plain asyncio + httpx in this process (`asyncio`), the floor.
- with `--prefect PYTHON`, Prefect (`prefect_flow.py` run by that interpreter).

Then one-step runs at 20 and 100 at once (runs/s, p50, p99 latency) and `GET /runs/{id}`
latency while 100 runs are in flight. Prints a table per measurement and writes every figure,
with the machine and the dev server's flags, to `bench/results/<--name>.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import temporalio
from temporalio.client import Client

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from graphs import (  # noqa: E402
    QUICK_SKIPS,
    SHAPES,
    Shape,
    floor_clients,
    graph,
    run_plain,
    shape_graph,
)
from stack import BIN, ROOT, BenchStack, bench_stack  # noqa: E402

BARE_QUEUE = "bench-bare"
RESULTS = BENCH / "results"
#: The gateway's fair-use limits would throttle the load measurements; off for the bench.
BENCH_ENV = {"TENANT_REQUESTS_PER_SECOND": "0", "TENANT_MAX_RUNNING_RUNS": "0"}
BASELINE = "bare:activity"
#: Clients the one-step loads spread their runs over (`Clients.gateways`).
GATEWAY_CLIENTS = 20
#: A process that spent less CPU than this during a throughput load took no part in it.
IDLE_CPU_SECONDS = 0.05
FLOOR = "asyncio"


class Unsupported(Exception):
    """The engine refused the execution mode (422)."""


@dataclass
class Contender:
    """One way of running a graph. `note` says why it cannot run, when it cannot."""

    name: str
    kind: str  # engine | bare | asyncio | prefect
    mode: str | None = None
    local: bool = False
    note: str | None = None


@dataclass
class Clients:
    gateway: httpx.AsyncClient
    http: list[httpx.AsyncClient]
    temporal: Client
    target: str
    outputs: bool
    #: More clients to the gateway: the one-step loads send each run through the next one.
    #: Through one client, 100 runs at once cost the bench ~19 ms of CPU a run (httpcore's pool
    #: rescans its connections for every queued request, `graphs.FLOOR_CLIENTS`), CPU the
    #: engine on the same 2 cores then lacks; bare runs go through the Temporal client.
    gateways: list[httpx.AsyncClient] = field(default_factory=list)
    #: The stack's processes by name (`temporal`, `worker`, `gateway`, `bare-worker`, …), whose
    #: CPU the throughput load accounts per run.
    pids: dict[str, int] = field(default_factory=dict)


# --- running one graph -------------------------------------------------------------------


def engine_payload(steps: list[dict[str, Any]], mode: str | None) -> dict[str, Any]:
    settings: dict[str, Any] = {"error_handling": {"max_retries": 0}}
    if mode is not None:
        settings["execution"] = {"mode": mode}
    return {
        "workflow_id": f"bench-{uuid.uuid4().hex[:12]}",
        "namespace": "bench",
        "STEPS_CONFIG": steps,
        "PIPELINE_SETTINGS": settings,
    }


async def wait_for_end(gateway: httpx.AsyncClient, workflow_id: str) -> dict[str, Any]:
    """Follow a run past the gateway's synchronous wait (a 202) until it ends."""
    while True:
        status: dict[str, Any] = (await gateway.get(f"/runs/{workflow_id}")).json()
        if status.get("status") != "running":
            return status
        await asyncio.sleep(0.2)


async def run_engine(
    steps: list[dict[str, Any]], gateway: httpx.AsyncClient, mode: str | None
) -> float:
    payload = engine_payload(steps, mode)
    started = time.perf_counter()
    response = await gateway.post("/execute", json=payload)
    if response.status_code == 422 and mode is not None:
        raise Unsupported(response.text[:300])
    result = response.json()
    if response.status_code == 202:
        result = await wait_for_end(gateway, payload["workflow_id"])
    elapsed = time.perf_counter() - started
    if result.get("status") != "completed":
        raise RuntimeError(f"engine run did not complete ({response.status_code}): {result}")
    return elapsed


async def run_bare(steps: list[dict[str, Any]], temporal: Client, local: bool) -> float:
    started = time.perf_counter()
    await temporal.execute_workflow(
        "BareGraph",
        {"steps": steps, "local": local},
        id=f"bare-{uuid.uuid4().hex[:12]}",
        task_queue=BARE_QUEUE,
    )
    return time.perf_counter() - started


async def run_once(contender: Contender, steps: list[dict[str, Any]], clients: Clients) -> float:
    if contender.kind == "engine":
        return await run_engine(steps, clients.gateway, contender.mode)
    if contender.kind == "bare":
        return await run_bare(steps, clients.temporal, contender.local)
    return await run_plain(steps, clients.http)


# --- contenders ----------------------------------------------------------------------------


async def engine_has_modes(gateway: httpx.AsyncClient) -> bool:
    """Whether the gateway's payload schema knows `PIPELINE_SETTINGS.execution`."""
    schemas = (await gateway.get("/openapi.json")).json()["components"]["schemas"]
    return any(
        "execution" in schema.get("properties", {})
        for name, schema in schemas.items()
        if name.startswith("PipelineSettings")
    )


async def contenders(clients: Clients, modes: list[str]) -> list[Contender]:
    """Every contender, each warmed up with a one-step run; a mode refused says why."""
    engines: list[Contender] = []
    if await engine_has_modes(clients.gateway):
        engines = [Contender(f"engine:{mode}", "engine", mode) for mode in modes]
    else:
        engines = [Contender("engine", "engine")] + [
            Contender(f"engine:{mode}", "engine", mode, note="unsupported: no execution modes")
            for mode in modes
        ]
    everyone = [
        *engines,
        Contender(BASELINE, "bare"),
        Contender("bare:local", "bare", local=True),
        Contender(FLOOR, "asyncio"),
    ]
    warm_up = graph(1, 1, clients.target, 1)
    for contender in everyone:
        if contender.note is None:
            try:
                await run_once(contender, warm_up, clients)
            except Unsupported as refused:
                contender.note = f"unsupported: 422 {refused}"
    return everyone


# --- measurements --------------------------------------------------------------------------


def why(failed: BaseException) -> str:
    """An exception and its causes, innermost last (a workflow failure's cause is the
    activity's, and its cause the error the activity raised)."""
    chain: list[str] = []
    cause: BaseException | None = failed
    while cause is not None and len(chain) < 4:
        chain.append(f"{type(cause).__name__}: {cause}")
        cause = cause.__cause__
    return " <- ".join(chain)[:500]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


async def measure_shape(
    shape: Shape, everyone: list[Contender], clients: Clients, repeat: int
) -> dict[str, Any]:
    """Each contender `repeat` times, in turns (so a busy moment of the machine is shared)."""
    steps = shape_graph(shape, clients.target, clients.outputs)
    seconds: dict[str, list[float]] = {c.name: [] for c in everyone if c.note is None}
    errors: dict[str, str] = {}
    for _ in range(repeat):
        for contender in everyone:
            if contender.note is not None or contender.name in errors:
                continue
            try:
                seconds[contender.name].append(await run_once(contender, steps, clients))
            except Unsupported as refused:
                errors[contender.name] = f"unsupported: 422 {refused}"
            except Exception as failed:  # a contender failing is a result
                errors[contender.name] = why(failed)
    figures: dict[str, Any] = {}
    for contender in everyone:
        runs = seconds.get(contender.name, [])
        figures[contender.name] = {
            "seconds": runs,
            "median": statistics.median(runs) if runs else None,
            "note": contender.note or errors.get(contender.name),
        }
    return {
        "label": shape.label,
        "steps": shape.steps,
        "critical_path": shape.critical_path,
        "step_ms": shape.step_ms,
        "contenders": figures,
    }


def add_ratios(result: dict[str, Any]) -> None:
    """Ratios vs the bare regular-activity worker and vs asyncio, and overhead per step."""
    figures = result["contenders"]
    baseline = figures.get(BASELINE, {}).get("median")
    floor = figures.get(FLOOR, {}).get("median")
    for figure in figures.values():
        median = figure["median"]
        figure["vs_bare"] = median / baseline if median and baseline else None
        figure["vs_asyncio"] = median / floor if median and floor else None
        figure["overhead_per_step_ms"] = (
            (median - floor) / result["critical_path"] * 1000
            if median is not None and floor is not None
            else None
        )


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) each process has used so far, this one as `bench`; only
    `bench` where there is no /proc (macOS)."""
    used = {"bench": sum(os.times()[:2])}
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for name, pid in pids.items():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        # The fields after the command's ")": utime and stime are the 12th and 13th.
        fields = stat.rpartition(")")[2].split()
        used[name] = (int(fields[11]) + int(fields[12])) / ticks
    return used


async def throughput(
    contender: Contender, clients: Clients, runs: int, concurrency: int
) -> dict[str, Any]:
    """`runs` one-step runs, `concurrency` at once: runs/s, each run's latency, and the CPU
    each process of the stack spent per run meanwhile (what bounds runs/s on a small machine).
    """
    steps = graph(1, 1, clients.target, 50)
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(turn: int) -> None:
        caller = clients
        if clients.gateways:
            caller = replace(clients, gateway=clients.gateways[turn % len(clients.gateways)])
        async with gate:
            latencies.append(await run_once(contender, steps, caller))

    cpu_before = cpu_seconds(clients.pids)
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(turn) for turn in range(runs)), return_exceptions=True)
    wall = time.perf_counter() - started
    cpu_after = cpu_seconds(clients.pids)
    failures = [why(outcome) for outcome in outcomes if isinstance(outcome, BaseException)]
    return {
        "runs": runs,
        "concurrency": concurrency,
        "seconds": wall,
        "runs_per_s": len(latencies) / wall,
        "p50": percentile(latencies, 0.5) if latencies else None,
        "p99": percentile(latencies, 0.99) if latencies else None,
        "failed": len(failures),
        "first_failure": failures[0] if failures else None,
        "cpu_ms_per_run": {
            name: (cpu_after[name] - cpu_before[name]) / runs * 1000
            for name in cpu_after
            # Processes this contender does not use stay out (a few ms of idle polling).
            if cpu_after[name] - cpu_before[name] > IDLE_CPU_SECONDS
        },
    }


async def status_under_load(
    mode: str | None, clients: Clients, in_flight: int, reads: int, readers: int = 4
) -> dict[str, Any]:
    """`GET /runs/{id}` latency while `in_flight` runs (chains of 10 x 1 s) are running."""
    gateway = clients.gateway
    steps = graph(10, 1, clients.target, 1000)
    ids: list[str] = []
    gate = asyncio.Semaphore(20)

    async def submit() -> None:
        payload = engine_payload(steps, mode)
        async with gate:
            response = await gateway.post("/execute?wait=false", json=payload)
        if response.status_code != 202:
            raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
        ids.append(payload["workflow_id"])

    await asyncio.gather(*(submit() for _ in range(in_flight)))
    latencies: list[float] = []
    running: list[bool] = []

    async def reader(first: int) -> None:
        turn = first
        while len(latencies) < reads:
            started = time.perf_counter()
            response = await gateway.get(f"/runs/{ids[turn % len(ids)]}")
            latencies.append(time.perf_counter() - started)
            running.append(response.json().get("status") == "running")
            turn += readers

    await asyncio.gather(*(reader(first) for first in range(readers)))
    ended = await asyncio.gather(*(wait_for_end(gateway, workflow_id) for workflow_id in ids))
    return {
        "in_flight": in_flight,
        "reads": len(latencies),
        "readers": readers,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
        "reads_of_running_runs": sum(running) / len(running),
        "completed": sum(1 for status in ended if status.get("status") == "completed"),
    }


def run_prefect(python: str, shape: Shape, target: str, repeat: int, timeout: float) -> Any:
    """Prefect in its own interpreter; its figures, or why there are none."""
    command = [
        python,
        str(BENCH / "prefect_flow.py"),
        "--target",
        target,
        "--levels",
        str(shape.levels),
        "--width",
        str(shape.width),
        "--step-ms",
        str(shape.step_ms),
        "--repeat",
        str(repeat),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"seconds": [], "median": None, "note": f"did not finish in {timeout:g} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        return {"seconds": [], "median": None, "note": f"exit {done.returncode}: {tail[:300]}"}
    figures: dict[str, Any] = json.loads(lines[-1])
    runs = figures["seconds"]
    return {
        "seconds": runs,
        "median": statistics.median(runs) if runs else None,
        "note": figures.get("note"),
        "prefect": figures.get("prefect"),
    }


# --- report --------------------------------------------------------------------------------


def number(value: float | None, spec: str, width: int) -> str:
    return f"{value:>{width}{spec}}" if value is not None else f"{'-':>{width}}"


def print_shape(result: dict[str, Any], repeat: int) -> None:
    print(
        f"\n{result['label']}: {result['steps']} steps, {result['critical_path']} on the"
        f" critical path, {result['step_ms']} ms per call, median of {repeat}"
    )
    header = (
        f"{'contender':<16}{'median s':>10}{'range s':>16}{'vs bare':>9}{'vs asyncio':>11}"
        f"{'overhead/step ms':>18}"
    )
    print(header)
    print("-" * len(header))
    for name, figure in result["contenders"].items():
        runs = figure["seconds"]
        spread = f"{min(runs):.3f}-{max(runs):.3f}" if runs else "-"
        line = (
            f"{name:<16}{number(figure['median'], '.3f', 10)}{spread:>16}"
            f"{number(figure.get('vs_bare'), '.2f', 9)}"
            f"{number(figure.get('vs_asyncio'), '.2f', 11)}"
            f"{number(figure.get('overhead_per_step_ms'), '.1f', 18)}"
        )
        print(line + (f"  ({figure['note']})" if figure["note"] else ""))


def print_throughput(rows: dict[str, Any]) -> None:
    for key, by_contender in rows.items():
        first = next(iter(by_contender.values()))
        print(f"\none-step runs, {first['concurrency']} at once, {first['runs']} runs ({key})")
        header = (
            f"{'contender':<16}{'runs/s':>9}{'p50 s':>9}{'p99 s':>9}{'vs bare':>9}{'failed':>8}"
            "  CPU ms/run (by process)"
        )
        print(header)
        print("-" * len(header))
        bare = by_contender.get(BASELINE, {}).get("runs_per_s")
        for name, row in by_contender.items():
            ratio = row["runs_per_s"] / bare if bare else None
            cpu = row.get("cpu_ms_per_run", {})
            spent = ", ".join(f"{process} {ms:.1f}" for process, ms in sorted(cpu.items()))
            print(
                f"{name:<16}{row['runs_per_s']:>9.1f}{number(row['p50'], '.3f', 9)}"
                f"{number(row['p99'], '.3f', 9)}{number(ratio, '.2f', 9)}{row['failed']:>8}"
                f"  {sum(cpu.values()):>5.1f}  ({spent})"
            )


def print_status(rows: dict[str, Any]) -> None:
    print("\nGET /runs/{id} while runs are in flight")
    header = (
        f"{'contender':<16}{'in flight':>10}{'reads':>7}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}"
        f"{'running':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        print(
            f"{name:<16}{row['in_flight']:>10}{row['reads']:>7}{row['p50_ms']:>8.1f}"
            f"{row['p99_ms']:>8.1f}{row['max_ms']:>8.1f}{row['reads_of_running_runs']:>9.0%}"
        )


def machine(stack: BenchStack, args: argparse.Namespace) -> dict[str, Any]:
    def output(command: list[str]) -> str:
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        return done.stdout.strip()

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "temporalio": temporalio.__version__,
        "temporal_cli": output([str(BIN / "temporal"), "--version"]),
        "git_commit": output(["git", "rev-parse", "--short", "HEAD"]),
        "dev_server": stack.temporal_command,
        "loadavg_start": os.getloadavg(),
        "args": vars(args),
    }


# --- main ----------------------------------------------------------------------------------


async def measure(args: argparse.Namespace, stack: BenchStack) -> dict[str, Any]:
    report: dict[str, Any] = {"machine": machine(stack, args)}
    shapes = [
        shape
        for shape in SHAPES
        if (not args.shapes or shape.name in args.shapes)
        and not (args.quick and shape.name in QUICK_SKIPS)
    ]
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
    http = floor_clients()
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=600, limits=limits) as gateway:
        clients = Clients(
            gateway=gateway,
            http=http,
            temporal=await Client.connect(stack.temporal_address),
            target=stack.target_url,
            outputs=not args.no_outputs,
            gateways=[
                httpx.AsyncClient(base_url=stack.gateway_url, timeout=600)
                for _ in range(GATEWAY_CLIENTS)
            ],
            pids={name: process.pid for name, process in stack.processes.processes},
        )
        everyone = await contenders(clients, args.modes)
        report["contenders"] = {c.name: c.note or "ran" for c in everyone}
        runnable = [c for c in everyone if c.note is None]
        report["shapes"] = {}
        for shape in [] if args.status_only else shapes:
            print(f"  {shape.label} …", flush=True)
            result = await measure_shape(shape, everyone, clients, args.repeat)
            if args.prefect:
                timeout = 120 if shape.steps < 1000 else 600
                result["contenders"]["prefect"] = run_prefect(
                    args.prefect, shape, stack.target_url, args.repeat, timeout
                )
            add_ratios(result)
            report["shapes"][shape.name] = result
            print_shape(result, args.repeat)
        report["throughput"] = {}
        for concurrency in [] if args.status_only else [20] if args.quick else [20, 100]:
            runs = 40 if args.quick else args.throughput_runs
            key = f"c{concurrency}"
            print(f"  one-step runs, {concurrency} at once …", flush=True)
            report["throughput"][key] = {
                c.name: await throughput(c, clients, runs, concurrency) for c in runnable
            }
        print_throughput(report["throughput"])
        report["status_under_load"] = {}
        engines = [c for c in runnable if c.kind == "engine"]
        for contender in engines[:1] if args.quick else engines:
            print(f"  GET /runs/{{id}} under load, {contender.name} …", flush=True)
            report["status_under_load"][contender.name] = await status_under_load(
                contender.mode, clients, in_flight=100, reads=100 if args.quick else 400
            )
        print_status(report["status_under_load"])
    for client in [*http, *clients.gateways]:
        await client.aclose()
    report["machine"]["loadavg_end"] = os.getloadavg()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=None, help="runs per graph (3; quick: 1)")
    parser.add_argument("--modes", default="durable,fast,auto", help="engine execution modes")
    parser.add_argument("--shapes", default="", help=f"only these, of {[s.name for s in SHAPES]}")
    parser.add_argument("--quick", action="store_true", help="smoke run: see the module doc")
    parser.add_argument("--throughput-runs", type=int, default=200)
    parser.add_argument("--status-only", action="store_true", help="only GET /runs/{id} under load")
    parser.add_argument("--prefect", metavar="PYTHON", help="a Python with prefect installed")
    parser.add_argument("--name", default="latest", help="bench/results/<name>.json")
    parser.add_argument(
        "--no-outputs", action="store_true", help="steps declare no outputs (no Redis writes)"
    )
    args = parser.parse_args()
    args.modes = [mode for mode in args.modes.split(",") if mode]
    args.shapes = [shape for shape in args.shapes.split(",") if shape]
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3

    with bench_stack(BENCH_ENV) as stack:
        stack.start(
            "bare-worker",
            [
                sys.executable,
                str(BENCH / "bare_worker.py"),
                "--address",
                stack.temporal_address,
                "--task-queue",
                BARE_QUEUE,
            ],
        )
        report = asyncio.run(measure(args, stack))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{args.name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
