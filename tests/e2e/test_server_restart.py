"""Fault: the Temporal dev server SIGKILLed with steps in flight, and started again on the
same database file and address.

Everything else keeps running through it: a real `worker.py` process and the gateway, whose
Temporal clients retry and reconnect on their own (the SDK retries polls for ever and other
calls for a while, with backoff). The steps in flight answer while the server is down; the
worker reports them once it is back, so the run finishes with each target called once.

That holds while the outage is shorter than a step's heartbeat timeout (10 s): past it, the
restarted server takes the worker for lost and sends the step again, with the same
Idempotency-Key, as after a worker crash.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from gateway.app import create_app
from settings import Settings
from tests.conftest import LOOPBACK, Targets, unique, wait_until
from tests.e2e.processes import DevServer, stop, worker_process
from tests.fakes.targets import serve

#: How long the fan-out steps take: they are running when the server is killed, and answer
#: while it is down.
IN_FLIGHT_MS = 2000


def fan_out_and_join(target: str, keys: dict[str, str]) -> list[dict[str, Any]]:
    """`first`, then `a`, `b`, `c` at once, then `join`, which collects their outputs."""
    fan = ["a", "b", "c"]
    return [
        {
            "step_name": "first",
            "usid": "u-first",
            "service_url": f"{target}/work/{keys['first']}?ms=50",
            "outputs": ["seed"],
            "input_prep_config": {"body": {"n": 1}},
        },
        *(
            {
                "step_name": name,
                "usid": f"u-{name}",
                "service_url": f"{target}/work/{keys[name]}?ms={IN_FLIGHT_MS}",
                "dependencies": ["first"],
                "outputs": [f"out_{name}"],
                "input_prep_config": {"body": {"seed": "{{seed.key}}"}},
            }
            for name in fan
        ),
        {
            "step_name": "join",
            "usid": "u-join",
            "service_url": f"{target}/work/{keys['join']}?ms=50",
            "dependencies": fan,
            "outputs": ["final"],
            "input_prep_config": {"body": {"parts": [f"{{{{out_{name}.key}}}}" for name in fan]}},
        },
    ]


async def test_a_dev_server_killed_mid_run_and_restarted_on_its_database_finishes_the_run(
    tmp_path: Path, redis_url: str, targets: Targets
) -> None:
    server = DevServer(tmp_path)
    await server.start()
    settings = Settings(
        temporal_address=server.address,
        redis_url=redis_url,
        task_queue=unique("tq"),
        outbound_allow=LOOPBACK,
        _env_file=None,  # type: ignore[call-arg]
    )
    keys = {name: unique(name) for name in ("first", "a", "b", "c", "join")}
    workflow_id = unique("server-restart")
    worker = worker_process(settings, tmp_path / "worker.log")
    try:
        async with (
            serve(create_app(settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            steps = fan_out_and_join(targets.url, keys)
            first_step = steps[0]
            response = await http.post(
                "/execute",
                params={"wait": "false"},
                json={"workflow_id": workflow_id, "STEPS_CONFIG": steps},
            )
            assert response.status_code == 202, response.text

            async def fan_out_in_flight() -> bool:
                return all(targets.state.calls[keys[name]] == 1 for name in "abc")

            await wait_until(fan_out_in_flight, timeout=60)
            server.kill()

            async def fan_out_answered() -> bool:
                return all(targets.state.answered[keys[name]] == 1 for name in "abc")

            # The worker now holds three results the server cannot take.
            await wait_until(fan_out_answered, timeout=30)
            await server.start()

            async def finished() -> dict[str, Any] | None:
                try:
                    answer = await http.get(f"/runs/{workflow_id}")
                except httpx.HTTPError:
                    return None
                body: dict[str, Any] = answer.json() if answer.status_code == 200 else {}
                return body if body.get("status") not in (None, "running") else None

            run = await wait_until(finished, timeout=120)

            # While it is down, the gateway says so (after its client's own retries), with a
            # 503 naming Temporal rather than a bare 500.
            server.kill()
            status, submit = await asyncio.gather(
                http.get(f"/runs/{workflow_id}"),
                http.post(
                    "/execute",
                    json={"workflow_id": unique("during-outage"), "STEPS_CONFIG": [first_step]},
                ),
            )
    finally:
        stop(worker)
        server.stop()

    assert run["status"] == "completed", run["error"]
    assert {name: step["status"] for name, step in run["steps"].items()} == {
        name: "completed" for name in keys
    }
    # No step ran twice: the results of the calls in flight reached the restarted server, and
    # the finished `first` came from the run's history in the database file.
    assert {name: targets.state.calls[key] for name, key in keys.items()} == {
        name: 1 for name in keys
    }
    for answer in (status, submit):
        assert answer.status_code == 503, answer.text
        assert answer.json()["detail"].startswith(f"Temporal at {server.address} is not answering")
    assert run["outputs"]["final"] == {
        "key": keys["join"],
        "input": {"parts": [keys["a"], keys["b"], keys["c"]]},
    }
