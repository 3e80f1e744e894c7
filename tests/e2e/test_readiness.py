"""Readiness follows the workers: `/health/ready` (and `/health`) answers 503 naming the task
queue within seconds of its last worker stopping, and 200 again once one polls it; liveness
answers throughout. Real `worker.py` processes, stopped as orchestrators stop them."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from gateway.app import create_app
from settings import Settings
from tests.conftest import make_settings, unique, wait_until
from tests.e2e.processes import stop, worker_process
from tests.fakes.targets import serve

#: "Within seconds": the graceful stop is reported at once; the rest is the readiness cache
#: and a loaded 2-core machine.
WITHIN = 10.0


@pytest.fixture
def settings(dev_env: WorkflowEnvironment, redis_url: str) -> Settings:
    # Queues of this test's own, so no other test's workers count.
    return make_settings(dev_env.client, redis_url, endpoint_workers=[unique("egress")])


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


async def readiness(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await http.get("/health/ready")
    assert (await http.get("/health/live")).status_code == 200
    return response.status_code, response.json()


async def test_readiness_follows_the_last_worker(
    settings: Settings, http: httpx.AsyncClient
) -> None:
    main, egress = settings.task_queue, settings.endpoint_workers[0]
    worker = worker_process(settings, args=["--endpoint", "all"])
    replacements = []
    try:

        async def ready() -> bool:
            return (await readiness(http))[0] == 200

        await wait_until(ready, timeout=60)  # a fresh worker takes a few seconds to start
        assert (await http.get("/health")).json()["task_queues"] == {main: "ok", egress: "ok"}

        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 30) == 0

        async def not_ready() -> dict[str, Any] | None:
            status, body = await readiness(http)
            return body if status == 503 else None

        body = await wait_until(not_ready, timeout=WITHIN)
        assert body["status"] == "degraded"
        assert (body["temporal"], body["redis"]) == ("ok", "ok")
        assert body["task_queues"] == {
            main: "no worker polls its workflow and activity tasks",
            egress: "no worker polls its workflow and activity tasks",
        }
        assert (await http.get("/health")).status_code == 503

        # A worker for the main queue only: the endpoint queue is still named.
        replacements.append(worker_process(settings))

        async def main_served() -> dict[str, Any] | None:
            _, body = await readiness(http)
            return body if body["task_queues"][main] == "ok" else None

        body = await wait_until(main_served, timeout=60)
        assert body["status"] == "degraded"
        assert body["task_queues"][egress] == "no worker polls its workflow and activity tasks"

        replacements.append(
            worker_process(settings, args=["--endpoints-only", "--endpoint", egress])
        )
        await wait_until(ready, timeout=60)
    finally:
        for process in (worker, *replacements):
            stop(process)
