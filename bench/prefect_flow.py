"""Prefect 3 running one benchmark graph: run by `bench/dag.py --prefect PYTHON`.

    .bench-venv-prefect/bin/python bench/prefect_flow.py --target http://127.0.0.1:PORT \\
        --levels 3 --width 10 --step-ms 50 --repeat 3

Runs in its own virtualenv (`make bench-compare` makes it), never with the project's
dependencies. Each step is a Prefect task making the step's HTTP call (httpx, POST of its
body), submitted with `wait_for=` its dependencies: the same graph and dependency rule as the
other contenders (`graphs.py`), on Prefect's default thread-pool task runner. Prefect runs in
ephemeral mode (a temporary local API server on SQLite that Prefect starts itself; nothing
leaves the machine). One warm-up run, then `--repeat` timed runs; prints one JSON line:
`{"seconds": [...], "prefect": "<version>"}`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Before Prefect reads its settings: a throwaway home, no telemetry, quiet logs.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="ws-bench-prefect-"))
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE", "true")

import httpx  # noqa: E402
import prefect  # noqa: E402
from graphs import graph  # noqa: E402
from prefect import flow, task  # noqa: E402

HTTP = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=200))


@task(retries=0, persist_result=False)
def call(url: str, body: Any) -> Any:
    response = HTTP.post(url, json=body)
    response.raise_for_status()
    return response.json()


@flow(persist_result=False)
def run_graph(steps: list[dict[str, Any]]) -> int:
    futures: dict[str, Any] = {}
    for step in steps:
        futures[step["step_name"]] = call.submit(
            step["service_url"],
            step["input_prep_config"]["body"],
            wait_for=[futures[name] for name in step["dependencies"]],
        )
    for future in futures.values():
        future.result()
    return len(futures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--levels", type=int, required=True)
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--step-ms", type=int, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run_graph(graph(1, 1, args.target, 1, outputs=False))  # warm-up: the API server starts
    steps = graph(args.levels, args.width, args.target, args.step_ms, outputs=False)
    seconds = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        run_graph(steps)
        seconds.append(time.perf_counter() - started)
    print(json.dumps({"seconds": seconds, "prefect": prefect.__version__}))


if __name__ == "__main__":
    main()
