"""`GET /runs/{id}` from the status the worker publishes to Redis (`activities.store.status`):
the same answer as the run's query, kept as the run moves, and read only for its own run."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from activities.store.models import fresh_key, status_key
from gateway.app import create_app
from gateway.runs.dag import DAG_RUNS
from gateway.runs.service import RunStatusService
from gateway.tenancy import OPEN_TENANT, Tenant
from tests.conftest import Gateway, Targets, make_settings, unique, wait_until
from tests.fakes.targets import serve
from workflows.dag.models import DagRunInput
from workflows.dag.workflow import DagWorkflow


def two_steps(targets: Targets, key: str, ms: int) -> dict[str, Any]:
    return {
        "workflow_id": unique("published"),
        "STEPS_CONFIG": [
            {"step_name": "first", "usid": "u1", "service_url": f"{targets.url}/echo/{key}"},
            {
                "step_name": "second",
                "usid": "u2",
                "service_url": f"{targets.url}/slow/{key}?ms={ms}",
                "dependencies": ["first"],
            },
        ],
    }


async def published(
    redis: Redis, workflow_id: str, step: str, status: str
) -> dict[str, Any] | None:
    """The run's published status once its `step` is `status`, else None."""
    fields = await redis.hgetall(status_key(workflow_id))  # type: ignore[misc]
    if not fields:
        return None
    snapshot = {"run_id": fields["run_id"], "status": json.loads(fields["status"])}
    steps = snapshot["status"]["steps"]
    return snapshot if steps[step]["status"] == status else None


async def published_running(gateway: Gateway, targets: Targets, redis: Redis) -> tuple[str, str]:
    """Start a run whose second step takes 3 s; its workflow and run ids once its worker has
    published it with that step running."""
    body = two_steps(targets, unique("k"), ms=3000)
    accepted = await gateway.http.post("/execute?wait=false", json=body)
    workflow_id, run_id = body["workflow_id"], accepted.json()["run_id"]
    await wait_until(lambda: published(redis, workflow_id, "second", "running"))
    return workflow_id, run_id


async def test_the_published_status_follows_the_run_as_its_query_does(
    gateway: Gateway, targets: Targets, redis: Redis
) -> None:
    body = two_steps(targets, unique("k"), ms=2000)
    accepted = await gateway.http.post("/execute?wait=false", json=body)
    assert accepted.status_code == 202
    workflow_id, run_id = body["workflow_id"], accepted.json()["run_id"]

    snapshot = await wait_until(lambda: published(redis, workflow_id, "second", "running"))
    assert snapshot["run_id"] == run_id
    assert snapshot["status"]["steps"]["first"]["status"] == "completed"
    query = await gateway.engine.client.get_workflow_handle(workflow_id).query("get_status")
    assert snapshot["status"] == query
    live = (await gateway.http.get(f"/runs/{workflow_id}")).json()
    assert live["steps"]["first"]["status"] == "completed"
    assert live["steps"]["second"]["status"] == "running"
    assert live["progress"]["completed"] == 1 and live["progress"]["running"] == 1

    final = await wait_until(lambda: published(redis, workflow_id, "second", "completed"))
    assert final["status"]["status"] == "completed"


async def test_a_running_run_is_answered_from_what_its_worker_published(
    gateway: Gateway, targets: Targets, redis: Redis
) -> None:
    # A second step long enough to be seen running, and still running at the end, on a
    # loaded machine (3 s could pass between two publishes there); cancelled once checked.
    body = two_steps(targets, unique("k"), ms=15000)
    assert (await gateway.http.post("/execute?wait=false", json=body)).status_code == 202
    workflow_id, key = body["workflow_id"], status_key(body["workflow_id"])

    snapshot = await wait_until(lambda: published(redis, workflow_id, "second", "running"))
    # What the gateway answers is what Redis holds: mark it, and the answer shows the mark.
    marked = snapshot["status"]
    marked["steps"]["first"]["http_status"] = 299
    await redis.hset(key, "status", json.dumps(marked))  # type: ignore[misc]
    answer = (await gateway.http.get(f"/runs/{workflow_id}")).json()
    assert answer["steps"]["first"]["http_status"] == 299
    # A status published by another run under this id (an earlier run of a reused id) is
    # never shown: the run's own query answers.
    await redis.hset(key, "run_id", "another-run")  # type: ignore[misc]
    answer = (await gateway.http.get(f"/runs/{workflow_id}")).json()
    assert answer["steps"]["first"]["http_status"] == 200
    assert answer["steps"]["second"]["status"] == "running"
    # Nothing published (Redis emptied): the query answers too.
    await redis.delete(key)
    answer = (await gateway.http.get(f"/runs/{workflow_id}")).json()
    assert answer["steps"]["first"]["http_status"] == 200
    assert answer["steps"]["second"]["status"] == "running"
    assert (await gateway.http.post(f"/runs/{workflow_id}/cancel")).status_code == 200


async def test_a_fresh_status_answers_alone_and_a_stale_one_is_described(
    gateway: Gateway, targets: Targets, redis: Redis
) -> None:
    workflow_id, run_id = await published_running(gateway, targets, redis)
    # Terminated from outside: no workflow task runs, so the published status stays running.
    await gateway.engine.client.get_workflow_handle(workflow_id).terminate("test")

    # Its mark fresh for the whole test: the published status answers, and nothing asks
    # Temporal (which would say the run is over).
    await redis.set(fresh_key(workflow_id), run_id, px=60_000)
    answer = (await gateway.http.get(f"/runs/{workflow_id}")).json()
    assert answer["status"] == "running"
    assert answer["steps"]["second"]["status"] == "running"
    # A mark naming another run vouches for nothing: the describe answers.
    await redis.set(fresh_key(workflow_id), "another-run", px=60_000)
    assert (await gateway.http.get(f"/runs/{workflow_id}")).json()["status"] == "cancelled"
    # No mark (its window passed): the describe answers.
    await redis.delete(fresh_key(workflow_id))
    answer = (await gateway.http.get(f"/runs/{workflow_id}")).json()
    assert answer["status"] == "cancelled"
    assert answer["steps"]["first"]["status"] == "completed"


async def test_an_instance_lookup_of_a_fresh_dag_run_is_404(
    gateway: Gateway, targets: Targets, redis: Redis
) -> None:
    workflow_id, run_id = await published_running(gateway, targets, redis)
    await redis.set(fresh_key(workflow_id), run_id, px=60_000)

    response = await gateway.http.get("/", params={"instanceId": workflow_id})
    assert response.status_code == 404
    assert "not an instruction run" in response.json()["detail"]
    assert (await gateway.http.get(f"/runs/{workflow_id}")).json()["status"] == "running"


async def test_a_run_no_worker_has_picked_up_is_answered_from_the_status_its_start_published(
    dev_env: WorkflowEnvironment, redis_url: str, redis: Redis, targets: Targets
) -> None:
    settings = make_settings(dev_env.client, redis_url)  # its task queue has no worker
    body = two_steps(targets, unique("k"), ms=10)
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        accepted = await http.post("/execute?wait=false", json=body)
        workflow_id, run_id = body["workflow_id"], accepted.json()["run_id"]

        # The gateway published the run as queued, fresh for STATUS_FRESH_SECONDS.
        fields = await redis.hgetall(status_key(workflow_id))  # type: ignore[misc]
        assert fields["run_id"] == run_id
        assert fields["workflow_type"] == "DagWorkflow"
        assert 0 < await redis.pttl(fresh_key(workflow_id)) <= 2000
        assert await redis.get(fresh_key(workflow_id)) == run_id
        fresh = (await http.get(f"/runs/{workflow_id}")).json()
        # The same answer as the describe gives once the mark is gone: read from its history.
        await redis.delete(fresh_key(workflow_id))
        described = (await http.get(f"/runs/{workflow_id}")).json()
    assert fresh == described
    assert fresh["run_id"] == run_id
    assert {name: step["status"] for name, step in fresh["steps"].items()} == {
        "first": "pending",
        "second": "pending",
    }
    await dev_env.client.get_workflow_handle(workflow_id).terminate("test")


async def test_a_queued_status_never_overwrites_what_the_runs_worker_published(
    gateway: Gateway, redis: Redis
) -> None:
    runs = RunStatusService(
        gateway.engine.client,
        Tenant(OPEN_TENANT, scoped=False),
        redis=redis,
        fresh_for=timedelta(seconds=2),
    )
    workflow_id = unique("queued")
    run = DagRunInput.model_validate(
        {
            "workflow_id": workflow_id,
            "STEPS_CONFIG": [
                {"step_name": "a", "usid": "u1", "service_url": "http://127.0.0.1:9/a"}
            ],
        }
    )
    worker_status = {
        "run_id": "run-1",
        "status": '{"from": "the worker"}',
        "workflow_type": "DagWorkflow",
    }
    await redis.hset(status_key(workflow_id), mapping=worker_status)  # type: ignore[misc]

    # The worker got there first for this run: its status stays, and no mark is set.
    await runs.publish_queued(DAG_RUNS, workflow_id, "run-1", run)
    assert await redis.hgetall(status_key(workflow_id)) == worker_status  # type: ignore[misc]
    assert await redis.get(fresh_key(workflow_id)) is None
    # An earlier run's status under the id is replaced by the new run's queued one.
    await runs.publish_queued(DAG_RUNS, workflow_id, "run-2", run)
    fields = await redis.hgetall(status_key(workflow_id))  # type: ignore[misc]
    assert fields["run_id"] == "run-2"
    assert json.loads(fields["status"])["steps"]["a"]["status"] == "pending"
    assert await redis.get(fresh_key(workflow_id)) == "run-2"
    # Gone with its window, whether or not a worker ever publishes the run.
    assert 0 < await redis.pttl(status_key(workflow_id)) <= 2000


async def test_attaching_to_a_running_run_publishes_no_queued_status_over_it(
    gateway: Gateway, targets: Targets, redis: Redis
) -> None:
    body = two_steps(targets, unique("k"), ms=3000)
    accepted = await gateway.http.post("/execute?wait=false", json=body)
    workflow_id, run_id = body["workflow_id"], accepted.json()["run_id"]

    async def second_running() -> bool:
        live = (await gateway.http.get(f"/runs/{workflow_id}")).json()
        return bool(live["steps"]["second"]["status"] == "running")

    await wait_until(second_running)
    # As when its worker withdrew a costly status: nothing of this run is in Redis.
    await redis.delete(status_key(workflow_id), fresh_key(workflow_id))

    attached = await gateway.http.post("/execute?wait=false", json=body)
    assert attached.status_code == 202
    assert attached.json()["run_id"] == run_id
    # The gateway did not begin this run, so says nothing of it: no "every step pending".
    assert await redis.exists(status_key(workflow_id), fresh_key(workflow_id)) == 0
    live = (await gateway.http.get(f"/runs/{workflow_id}")).json()
    assert live["steps"]["first"]["status"] == "completed"


async def test_a_fast_run_whose_first_task_is_still_open_is_read_from_its_published_status(
    gateway: Gateway, targets: Targets, redis: Redis
) -> None:
    body = two_steps(targets, unique("k"), ms=4000)
    body["STEPS_CONFIG"].reverse()  # the slow step first: the segment holds the task open
    body["STEPS_CONFIG"][0].pop("dependencies")
    body["STEPS_CONFIG"][1]["dependencies"] = ["second"]
    body["PIPELINE_SETTINGS"] = {"execution": {"mode": "fast"}}
    # Started as the `temporal` CLI (or a gateway before `workflows.shared.control`) starts
    # it, with Temporal's default task timeout: the gateway's 0.75 s one would let the first task
    # complete as a heartbeat within 0.6 s.
    run = DagRunInput.model_validate(body)
    run.engine.execution_mode = "fast"
    run.engine.task_queue = gateway.engine.settings.task_queue
    workflow_id = body["workflow_id"]
    await gateway.engine.client.start_workflow(
        DagWorkflow.run, run, id=workflow_id, task_queue=run.engine.task_queue
    )
    await wait_until(lambda: published(redis, workflow_id, "second", "running"))
    described = await gateway.engine.client.get_workflow_handle(workflow_id).describe()
    assert described.history_length < 4  # its first workflow task has not completed

    # Past the window (no mark), the describe sees a run no task has completed; what its worker
    # published says what it does: its slow step running, not every step pending.
    await redis.delete(fresh_key(workflow_id))
    live = (await gateway.http.get(f"/runs/{workflow_id}")).json()
    assert live["steps"]["second"]["status"] == "running"
    assert live["steps"]["first"]["status"] == "pending"
