"""Fault: Redis stopped for 30 s mid-run, then started again on the same port and data.

Steps that reach Redis while it is down (an output write, a selection read) retry with capped
backoff for STORE_RETRY_WINDOW_SECONDS (300 s by default), so the run only waits: it
finishes, and every output is in Redis afterwards, those written before the outage included.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from gateway.app import create_app
from tests.conftest import Targets, _run_workers, make_settings, unique, wait_until
from tests.e2e.processes import RedisServer
from tests.fakes.targets import serve

OUTAGE_SECONDS = 30.0
NAMESPACE = "outage"


def steps(target: str, keys: dict[str, str]) -> list[dict[str, Any]]:
    """`first` writes its output before the outage. `writer` and `reader` answer during it:
    `writer`'s output write meets a stopped Redis, and so do the selection reads of `picked`
    and `unpicked`, which wait on `reader`. `last` uses what `writer` returned."""

    def work(name: str, ms: int = 50) -> str:
        return f"{target}/work/{keys[name]}?ms={ms}"

    return [
        {"step_name": "first", "usid": "u-first", "service_url": work("first"), "outputs": ["o1"]},
        {
            "step_name": "writer",
            "usid": "u-writer",
            "service_url": work("writer", 1000),
            "dependencies": ["first"],
            "outputs": ["o_writer"],
            "input_prep_config": {"body": {"after": "{{o1.key}}"}},
        },
        {
            "step_name": "reader",
            "usid": "u-reader",
            "service_url": work("reader", 1000),
            "dependencies": ["first"],
        },
        *(
            {
                "step_name": name,
                "usid": f"u-{name}",
                "service_url": work(name),
                "dependencies": ["reader", "selection_pick"],
                "outputs": [f"o_{name}"],
            }
            for name in ("picked", "unpicked")
        ),
        {
            "step_name": "last",
            "usid": "u-last",
            "service_url": work("last"),
            "dependencies": ["picked", "writer"],
            "outputs": ["o_last"],
            "input_prep_config": {"body": {"writer": "{{o_writer.key}}"}},
        },
    ]


async def test_a_run_rides_out_a_redis_outage_and_loses_no_output(
    dev_env: WorkflowEnvironment, tmp_path: Path, targets: Targets
) -> None:
    redis_server = RedisServer(tmp_path)
    await redis_server.start()
    settings = make_settings(dev_env.client, redis_server.url)
    keys = {
        name: unique(name) for name in ("first", "writer", "reader", "picked", "unpicked", "last")
    }
    workflow_id = unique("redis-outage")

    def key(name: str) -> str:
        return f"{NAMESPACE}:{workflow_id}:{name}"

    try:
        async with Redis.from_url(redis_server.url) as redis:
            await redis.set(key("selection_pick"), json.dumps(["u-picked"]))
        async for _ in _run_workers(dev_env.client, settings, []):
            async with (
                serve(create_app(settings)) as url,
                httpx.AsyncClient(base_url=url, timeout=30) as http,
            ):
                response = await http.post(
                    "/execute",
                    params={"wait": "false"},
                    json={
                        "workflow_id": workflow_id,
                        "namespace": NAMESPACE,
                        "STEPS_CONFIG": steps(targets.url, keys),
                    },
                )
                assert response.status_code == 202, response.text

                async def in_flight() -> bool:
                    return all(
                        targets.state.calls[keys[name]] == 1 for name in ("writer", "reader")
                    )

                await wait_until(in_flight, timeout=60)
                async with Redis.from_url(redis_server.url) as redis:
                    assert await redis.exists(key("o1"))  # written before its dependents started
                redis_server.stop()
                stopped = time.monotonic()

                async def run_status() -> dict[str, Any]:
                    # Answered from Temporal, Redis or not.
                    response = await http.get(f"/runs/{workflow_id}")
                    assert response.status_code == 200, response.text
                    answer: dict[str, Any] = response.json()
                    return answer

                async def redis_reported_down() -> bool:
                    health = await http.get("/health")
                    return health.status_code == 503 and health.json()["redis"] != "ok"

                await wait_until(redis_reported_down, timeout=30)

                async def answered() -> bool:
                    return all(
                        targets.state.answered[keys[name]] == 1 for name in ("writer", "reader")
                    )

                await wait_until(answered, timeout=30)
                assert time.monotonic() - stopped < OUTAGE_SECONDS
                # The outage's length is the fault itself, not a wait for some state.
                await asyncio.sleep(stopped + OUTAGE_SECONDS - time.monotonic())
                # Thirty seconds on, nothing has failed: the steps are still waiting for Redis.
                waiting = await run_status()
                assert waiting["status"] == "running", waiting["error"]
                assert {name: step["status"] for name, step in waiting["steps"].items()} == {
                    "first": "completed",
                    "writer": "running",  # its output is not stored yet
                    "reader": "completed",
                    "picked": "pending",  # its selection is not read yet
                    "unpicked": "pending",
                    "last": "pending",
                }

                await redis_server.start()

                async def finished() -> dict[str, Any] | None:
                    status = await run_status()
                    return status if status["status"] != "running" else None

                run = await wait_until(finished, timeout=60)
        async with Redis.from_url(redis_server.url) as redis:
            stored = {
                name: json.loads(raw) if (raw := await redis.get(key(name))) is not None else None
                for name in ("o1", "o_writer", "o_picked", "o_unpicked", "o_last")
            }
    finally:
        redis_server.stop()

    assert run["status"] == "completed", run["error"]
    assert {name: step["status"] for name, step in run["steps"].items()} == {
        "first": "completed",
        "writer": "completed",
        "reader": "completed",
        "picked": "completed",
        "unpicked": "aborted",
        "last": "completed",
    }
    assert "u-unpicked" in run["steps"]["unpicked"]["abort_reason"]
    assert run["outputs"]["o_last"] == {"key": keys["last"], "input": {"writer": keys["writer"]}}
    assert stored == {**{name: run["outputs"].get(name) for name in stored}, "o_unpicked": None}
    assert stored["o1"]["key"] == keys["first"]
    # Each step's target was called once: the outage delayed steps, it did not repeat them.
    assert {name: targets.state.calls[k] for name, k in keys.items()} == {
        "first": 1,
        "writer": 1,
        "reader": 1,
        "picked": 1,
        "unpicked": 0,
        "last": 1,
    }
