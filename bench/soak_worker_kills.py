"""Soak: a batch of DAG runs while the worker is SIGKILLed again and again.

    make soak                                              # 20 kills, 6 + 20 runs
    .venv/bin/python bench/soak_worker_kills.py --kills 50 --runs 10 --seed 7

Starts its own stack on free ports (a Temporal dev server, Redis, a target service in this
process) and one `worker.py` process, starts `--runs` runs, and SIGKILLs the worker at
random moments once it is at work, starting a fresh worker and one more run after each kill.
Then it checks, and prints:

- every run completed, with the values its steps passed along;
- no step's target was called more than once per kill that hit it. A kill *hits* a step
  when, right after it, Temporal shows the step's call as started by the killed worker:
  taken by it and not reported. Deliveries are counted by the `Idempotency-Key` each call
  carries, which every retry of a step repeats: what a de-duplicating target would see.

`tests/e2e/test_worker_kills.py` runs a small version (3 kills) in `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.api.enums.v1 import PendingActivityState  # noqa: E402
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle  # noqa: E402

from activities.http.models import idempotency_key  # noqa: E402
from gateway.starts import dag_engine_options  # noqa: E402
from gateway.tenancy import OPEN_TENANT, Tenant  # noqa: E402
from settings import Settings, close_data_converter, connect_temporal  # noqa: E402
from tests.conftest import LOOPBACK  # noqa: E402
from tests.e2e.processes import DevServer, RedisServer, stop, worker_process  # noqa: E402
from tests.fakes.targets import TargetState, create_target_app, serve  # noqa: E402
from workflows.dag.models import DagRunInput  # noqa: E402
from workflows.dag.workflow import DagWorkflow, step_activity_id  # noqa: E402

#: How many times a step may be retried: a step hit by more kills than this would fail
#: (`Timeout`, a heartbeat timeout per kill), which is not what this soak measures.
MAX_RETRIES = 50
STEP_NAMES = ("a", "b", "c", "d", "e")
#: Runs as an open gateway (no API keys) starts them.
OPEN = Tenant(OPEN_TENANT, scoped=False)
#: A fresh worker process is ready once it logs this line (worker.py).
READY_LINE = b"worker polling"


@dataclass
class SoakReport:
    runs: int = 0
    completed: int = 0
    #: Run id -> why it did not complete.
    failures: dict[str, str] = field(default_factory=dict)
    steps: int = 0
    kills: int = 0
    #: Kills that found at least one step call in flight.
    kills_that_hit: int = 0
    #: Idempotency key -> kills that hit its step.
    hits: Counter[str] = field(default_factory=Counter)
    #: Idempotency key -> calls the target received with it.
    deliveries: Counter[str] = field(default_factory=Counter)
    #: Steps whose target was called more often than 1 + the kills that hit them.
    over_limit: dict[str, tuple[int, int]] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def repeated(self) -> int:
        """Calls beyond the first of each step: what a target without de-duplication repeats."""
        return sum(count - 1 for count in self.deliveries.values())

    def summary(self) -> str:
        return (
            f"runs {self.runs} (completed {self.completed}, failed {len(self.failures)}),"
            f" steps {self.steps}, kills {self.kills} ({self.kills_that_hit} hit a step call,"
            f" {sum(self.hits.values())} step calls hit), deliveries"
            f" {sum(self.deliveries.values())}: {len(self.deliveries)} distinct,"
            f" {self.repeated} repeated (at most {max(self.deliveries.values(), default=0)}"
            f" for one step), over the limit {len(self.over_limit)}, in {self.elapsed:.0f} s"
        )


def pipeline(workflow_id: str, target: str, rng: random.Random) -> DagRunInput:
    """`STEP_NAMES`: `a` -> `b`, `c` -> `d` -> `e`, each passing on what the ones above
    returned; each call takes 0.3 to 1.5 s, so kills find calls in flight."""

    def work(name: str) -> str:
        return f"{target}/work/{workflow_id}-{name}?ms={rng.randint(300, 1500)}"

    steps: list[dict[str, Any]] = [
        {"step_name": "a", "usid": "u-a", "service_url": work("a"), "outputs": ["oa"]},
        *(
            {
                "step_name": name,
                "usid": f"u-{name}",
                "service_url": work(name),
                "dependencies": ["a"],
                "outputs": [f"o{name}"],
                "input_prep_config": {"body": {"a": "{{oa.key}}"}},
            }
            for name in ("b", "c")
        ),
        {
            "step_name": "d",
            "usid": "u-d",
            "service_url": work("d"),
            "dependencies": ["b", "c"],
            "outputs": ["od"],
            "input_prep_config": {"body": {"b": "{{ob.key}}", "c": "{{oc.key}}"}},
        },
        {
            "step_name": "e",
            "usid": "u-e",
            "service_url": work("e"),
            "dependencies": ["d"],
            "outputs": ["oe"],
            "input_prep_config": {"body": {"d": "{{od.key}}"}},
        },
    ]
    run = DagRunInput.model_validate(
        {
            "workflow_id": workflow_id,
            "namespace": "soak",
            "STEPS_CONFIG": steps,
            "PIPELINE_SETTINGS": {"error_handling": {"max_retries": MAX_RETRIES}},
        }
    )
    return run


def expected_outputs(workflow_id: str) -> dict[str, Any]:
    def key(name: str) -> str:
        return f"{workflow_id}-{name}"

    return {
        "oe": {"key": key("e"), "input": {"d": key("d")}},
        "od": {"key": key("d"), "input": {"b": key("b"), "c": key("c")}},
        "ob": {"key": key("b"), "input": {"a": key("a")}},
    }


async def started_worker(
    settings: Settings, log: Path, timeout: float = 60.0
) -> subprocess.Popen[bytes]:
    """A fresh `worker.py`, once it polls."""
    process = worker_process(settings, log)
    deadline = time.monotonic() + timeout
    while READY_LINE not in (log.read_bytes() if log.exists() else b""):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"worker.py did not start; see {log}")
        await asyncio.sleep(0.05)
    return process


def identity(process: subprocess.Popen[bytes]) -> str:
    """The identity a `worker.py` process reports to Temporal (the SDK's default)."""
    return f"{process.pid}@{socket.gethostname()}"


async def calls_hit(handles: dict[str, WorkflowHandle[Any, Any]], killed: str) -> list[str]:
    """Idempotency keys of the steps whose current call the `killed` worker had taken and
    not reported: Temporal still shows it as started, by that worker."""
    keys = []
    for _, handle in sorted(handles.items()):
        description = await handle.describe()
        assert handle.first_execution_run_id is not None
        for pending in description.raw_description.pending_activities:
            if (
                pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                and pending.last_worker_identity == killed
            ):
                step = pending.activity_id.removeprefix(step_activity_id(""))
                keys.append(idempotency_key(handle.first_execution_run_id, step))
    return keys


async def soak(
    client: Client,
    settings: Settings,
    target: str,
    state: TargetState,
    *,
    kills: int,
    runs: int,
    rng: random.Random,
    logs: Path,
    kill_delay: tuple[float, float] = (0.0, 1.5),
    drain_timeout: float = 300.0,
) -> SoakReport:
    """Start `runs` runs, then kill the worker `kills` times, each time `kill_delay` seconds
    (at random) after a step call has started on it, starting one more run after each kill;
    then wait for every run."""
    report = SoakReport()
    started = time.monotonic()
    active: dict[str, WorkflowHandle[Any, Any]] = {}
    keys_of_run: dict[str, list[str]] = {}
    tasks: list[asyncio.Task[None]] = []

    async def one_run(index: int) -> None:
        workflow_id = f"soak-{index}-{rng.getrandbits(32):08x}"
        run = pipeline(workflow_id, target, rng)
        run.engine = dag_engine_options(settings, OPEN)
        handle = await client.start_workflow(
            DagWorkflow.run, run, id=workflow_id, task_queue=settings.task_queue
        )
        assert handle.first_execution_run_id is not None
        keys_of_run[workflow_id] = [
            idempotency_key(handle.first_execution_run_id, name) for name in STEP_NAMES
        ]
        active[workflow_id] = handle
        try:
            result = await handle.result()
        except WorkflowFailureError as exc:
            report.failures[workflow_id] = str(exc.cause)
            return
        finally:
            del active[workflow_id]
        wanted = expected_outputs(workflow_id)
        got = {name: result.outputs.get(name) for name in wanted}
        if result.status != "completed" or got != wanted:
            report.failures[workflow_id] = f"{result.status}, outputs {got}, wanted {wanted}"
        else:
            report.completed += 1

    def launch() -> None:
        tasks.append(asyncio.create_task(one_run(len(tasks) + 1)))

    def calls_at_target() -> int:
        """Step calls the target is answering right now."""
        names = [f"{workflow_id}-{name}" for workflow_id in active for name in STEP_NAMES]
        return sum(state.calls[name] - state.answered[name] for name in names)

    worker = await started_worker(settings, logs / "worker-0.log")
    for _ in range(runs):
        launch()
    try:
        for kill in range(1, kills + 1):
            # Kill a worker at work, at a random moment from its first call on: a call in
            # flight, one answered but not yet reported, or a workflow task.
            deadline = time.monotonic() + drain_timeout
            while not calls_at_target():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no step call started within {drain_timeout:g}s")
                await asyncio.sleep(0.02)
            await asyncio.sleep(rng.uniform(*kill_delay))
            stop(worker, kill=True)
            report.kills += 1
            hit = await calls_hit(dict(active), identity(worker))
            report.kills_that_hit += bool(hit)
            report.hits.update(hit)
            # Fresh work for the next worker: the calls this kill cut off wait for their
            # heartbeat timeout (10 s) before they are retried.
            launch()
            worker = await started_worker(settings, logs / f"worker-{kill}.log")
        await asyncio.wait_for(asyncio.gather(*tasks), drain_timeout)
    finally:
        for task in tasks:
            task.cancel()
        stop(worker)
    report.runs = len(tasks)
    report.elapsed = time.monotonic() - started
    keys = [key for run_keys in keys_of_run.values() for key in run_keys]
    report.steps = len(keys)
    report.deliveries = Counter({key: state.deliveries[key] for key in keys})
    report.over_limit = {
        key: (count, report.hits[key])
        for key, count in report.deliveries.items()
        if count > 1 + report.hits[key]
    }
    return report


async def main_async(args: argparse.Namespace) -> int:
    data = Path(tempfile.mkdtemp(prefix="ws-soak-"))
    server, redis = DevServer(data), RedisServer(data)
    app, state = create_target_app()
    try:
        await server.start()
        await redis.start()
        settings = Settings(
            temporal_address=server.address,
            redis_url=redis.url,
            task_queue="soak",
            outbound_allow=LOOPBACK,
            _env_file=None,  # type: ignore[call-arg]
        )
        client = await connect_temporal(settings)
        async with serve(app) as target:
            print(
                f"soak: {args.kills} kills, {args.runs} runs and one more per kill, seed"
                f" {args.seed}; logs in {data}"
            )
            report = await soak(
                client,
                settings,
                target,
                state,
                kills=args.kills,
                runs=args.runs,
                rng=random.Random(args.seed),
                logs=data,
            )
        await close_data_converter(client.data_converter)
    finally:
        redis.stop()
        server.stop()
    print(report.summary())
    for workflow_id, reason in sorted(report.failures.items()):
        print(f"  run {workflow_id} did not complete: {reason}")
    for key, (count, hits) in sorted(report.over_limit.items()):
        print(f"  step with key {key}: {count} deliveries, {hits} kills hit it")
    return 0 if not report.failures and not report.over_limit else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--runs", type=int, default=6, help="runs started at first")
    parser.add_argument("--seed", type=int, default=1)
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
