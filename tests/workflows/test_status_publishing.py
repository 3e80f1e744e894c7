"""The worker publishes each run's status to Redis (`activities.store.status`), and a Redis it
cannot reach never holds a run up."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.store.models import RunSnapshot, fresh_key, status_key
from activities.store.status import (
    FINISHED_TTL,
    PublishingRunner,
    RedisStatusPublisher,
)
from tests.conftest import Engine, Targets, make_settings, unique, wait_until
from tests.fakes.targets import free_port
from worker import WORKFLOW_RUNNER, build_workers, open_activities
from workflows.dag.models import DagRunInput, DagRunResult
from workflows.dag.workflow import DagWorkflow


def pipeline(targets: Targets, task_queue: str, second: str = "echo/y") -> DagRunInput:
    payload = DagRunInput.model_validate(
        {
            "workflow_id": unique("published"),
            "STEPS_CONFIG": [
                {"step_name": "a", "usid": "u-a", "service_url": f"{targets.url}/echo/x"},
                {
                    "step_name": "b",
                    "usid": "u-b",
                    "service_url": f"{targets.url}/{second}",
                    "dependencies": ["a"],
                },
            ],
        }
    )
    payload.engine.task_queue = task_queue
    return payload


async def test_a_finished_run_leaves_its_final_status_briefly(
    engine: Engine, targets: Targets, redis: Redis
) -> None:
    payload = pipeline(targets, engine.settings.task_queue)
    handle = await engine.client.start_workflow(
        DagWorkflow.run, payload, id=payload.workflow_id, task_queue=engine.settings.task_queue
    )
    result = await handle.result()

    async def final() -> dict[str, Any] | None:
        published: dict[str, Any] = await redis.hgetall(status_key(payload.workflow_id))  # type: ignore[misc]
        done = published and json.loads(published["status"])["status"] == "completed"
        return published if done else None

    published = await wait_until(final)
    assert published["run_id"] == handle.result_run_id
    status = DagRunResult.model_validate(json.loads(published["status"]))
    assert status.steps == result.steps
    ttl = await redis.ttl(status_key(payload.workflow_id))
    assert 0 < ttl <= FINISHED_TTL.total_seconds()


async def test_runs_go_on_when_the_worker_cannot_reach_redis_to_publish(
    time_skipping_env: WorkflowEnvironment, redis_url: str, targets: Targets
) -> None:
    settings = make_settings(time_skipping_env.client, redis_url)
    nowhere = RedisStatusPublisher(
        f"redis://127.0.0.1:{free_port()}/0", fresh_for=timedelta(seconds=2)
    )
    async with open_activities(settings) as activities:
        unreachable = dataclasses.replace(activities, status=nowhere)
        [worker] = build_workers(time_skipping_env.client, settings, unreachable)
        async with worker:
            payload = pipeline(targets, settings.task_queue)
            result = await time_skipping_env.client.execute_workflow(
                DagWorkflow.run, payload, id=payload.workflow_id, task_queue=settings.task_queue
            )
    nowhere.close()
    assert result.status == "completed"
    assert [step.status for step in result.steps.values()] == ["completed", "completed"]


class Recorded:
    """The real publisher, with what the worker asked of it in order."""

    def __init__(self, publisher: RedisStatusPublisher) -> None:
        self.publisher = publisher
        self.calls: list[str] = []

    def publish(self, workflow_id: str, snapshot: RunSnapshot, finished: bool) -> None:
        status = json.loads(snapshot.status)
        done = sum(step["status"] == "completed" for step in status["steps"].values())
        self.calls.append(f"publish {done} done" + (", finished" if finished else ""))
        self.publisher.publish(workflow_id, snapshot, finished)

    def withdraw(self, workflow_id: str) -> None:
        self.calls.append("withdraw")
        self.publisher.withdraw(workflow_id)


@pytest.mark.parametrize(
    ("share", "calls"),
    [
        # Cheap to publish: after every task (started; a done; b done and the run ended).
        (1.0, ["publish 0 done", "publish 1 done", "publish 2 done, finished"]),
        # Too costly to publish each time: withdrawn in between, so no read sees an old state;
        # the run's end is always published.
        (1e-12, ["publish 0 done", "withdraw", "publish 2 done, finished"]),
    ],
)
async def test_publishing_is_capped_at_a_share_of_the_runs_time(
    time_skipping_env: WorkflowEnvironment,
    redis_url: str,
    redis: Redis,
    targets: Targets,
    share: float,
    calls: list[str],
) -> None:
    settings = make_settings(time_skipping_env.client, redis_url)
    async with open_activities(settings) as activities:
        assert activities.status is not None
        recorded = Recorded(RedisStatusPublisher(redis_url, fresh_for=timedelta(seconds=2)))
        runner = PublishingRunner(WORKFLOW_RUNNER, recorded, {DagWorkflow.__name__}, share)
        worker = Worker(
            time_skipping_env.client,
            task_queue=settings.task_queue,
            workflows=[DagWorkflow],
            activities=[activities.http.call_http],
            workflow_runner=runner,
        )
        async with worker:
            payload = pipeline(targets, settings.task_queue)
            await time_skipping_env.client.execute_workflow(
                DagWorkflow.run, payload, id=payload.workflow_id, task_queue=settings.task_queue
            )
    recorded.publisher.close()
    assert recorded.calls == calls
    published: dict[str, Any] = await redis.hgetall(status_key(payload.workflow_id))  # type: ignore[misc]
    assert json.loads(published["status"])["status"] == "completed"


@pytest.mark.parametrize("window", [60.0, 0.0])
async def test_a_running_runs_status_is_marked_fresh_for_the_window(
    time_skipping_env: WorkflowEnvironment,
    redis_url: str,
    redis: Redis,
    targets: Targets,
    window: float,
) -> None:
    # A window far longer than the test, so the mark cannot expire while it is looked at.
    settings = make_settings(time_skipping_env.client, redis_url, status_fresh_seconds=window)
    async with open_activities(settings) as activities:
        [worker] = build_workers(time_skipping_env.client, settings, activities)
        async with worker:
            payload = pipeline(targets, settings.task_queue, f"slow/{unique('k')}?ms=1500")
            handle = await time_skipping_env.client.start_workflow(
                DagWorkflow.run, payload, id=payload.workflow_id, task_queue=settings.task_queue
            )
            key, mark = status_key(payload.workflow_id), fresh_key(payload.workflow_id)

            async def b_running() -> bool:
                published: dict[str, Any] = await redis.hgetall(key)  # type: ignore[misc]
                steps = json.loads(published["status"])["steps"] if published else {}
                return bool(steps) and steps["b"]["status"] == "running"

            await wait_until(b_running)
            published = await redis.hgetall(key)  # type: ignore[misc]
            assert published["workflow_type"] == "DagWorkflow"
            if window:
                assert await redis.get(mark) == handle.result_run_id == published["run_id"]
                assert 0 < await redis.pttl(mark) <= window * 1000
            else:
                assert not await redis.exists(mark)
            assert (await handle.result()).status == "completed"

    async def mark_gone() -> bool:
        return not await redis.exists(mark)

    await wait_until(mark_gone)
    final: dict[str, Any] = await redis.hgetall(key)  # type: ignore[misc]
    assert json.loads(final["status"])["status"] == "completed"
