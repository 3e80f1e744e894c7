"""A bare temporalio worker: the benchmark's measure of what Temporal itself costs.

    .venv/bin/python bench/bare_worker.py --address 127.0.0.1:7233 --task-queue bench-bare

`bench/dag.py` starts it in its own process against the same dev server as the engine. Its
one workflow runs a graph with the same dependency rule as every other contender (each step
starts when its own dependencies are done, `bench/graphs.py`) and makes each step's HTTP call
(httpx, POST of the step's body) as a regular activity or, with `local`, as a local activity.
Nothing else: no Redis, no status, no templating, SDK defaults for the worker, one attempt
per call like the engine's `max_retries: 0`. A client starts it by name: `BareGraph` with
`{"steps": [...], "local": false}`.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    import httpx

CALL_TIMEOUT = timedelta(seconds=60)
ONE_ATTEMPT = RetryPolicy(maximum_attempts=1)


class Calls:
    """The step's HTTP call over one shared client, as a Temporal activity."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    @activity.defn(name="bare_call")
    async def call(self, step: dict[str, Any]) -> Any:
        response = await self.http.post(step["service_url"], json=step["input_prep_config"]["body"])
        response.raise_for_status()
        return response.json()


@workflow.defn(name="BareGraph")
class BareGraph:
    @workflow.run
    async def run(self, job: dict[str, Any]) -> int:
        done: dict[str, asyncio.Task[Any]] = {}

        async def step(config: dict[str, Any]) -> Any:
            if config["dependencies"]:
                await asyncio.gather(*(done[name] for name in config["dependencies"]))
            if job["local"]:
                return await workflow.execute_local_activity(
                    "bare_call",
                    config,
                    start_to_close_timeout=CALL_TIMEOUT,
                    retry_policy=ONE_ATTEMPT,
                )
            return await workflow.execute_activity(
                "bare_call", config, start_to_close_timeout=CALL_TIMEOUT, retry_policy=ONE_ATTEMPT
            )

        for config in job["steps"]:
            done[config["step_name"]] = asyncio.create_task(step(config))
        await asyncio.gather(*done.values())
        return len(done)


async def serve(address: str, task_queue: str, namespace: str) -> None:
    client = await Client.connect(address, namespace=namespace)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[BareGraph],
            activities=[Calls(http).call],
        )
        await worker.run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", default="bench-bare")
    parser.add_argument("--namespace", default="default")
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.task_queue, args.namespace))


if __name__ == "__main__":
    main()
