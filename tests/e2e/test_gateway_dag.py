"""The whole stack over HTTP: real gateway, real dev server, real Redis, local targets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from gateway.app import create_app
from tests.conftest import Engine, Gateway, Targets, make_settings, unique, wait_until
from tests.fakes.targets import free_port, serve


def payload(steps: list[dict[str, Any]], **settings: Any) -> dict[str, Any]:
    return {
        "workflow_id": unique("gw"),
        "namespace": "acme",
        "original_input": {"city": "Lyon", "tags": ["a", "b"]},
        "input_data": {"lang": "fr"},
        "STEPS_CONFIG": steps,
        "PIPELINE_SETTINGS": settings,
    }


async def test_diamond_with_nested_substitution(gateway: Gateway, targets: Targets, redis):
    key = unique("diamond")
    body = payload(
        [
            {
                "step_name": "root",
                "usid": "u-root",
                "service_url": f"{targets.url}/echo/{key}",
                "outputs": ["root_out"],
                "input_prep_config": {"body": {"items": [{"name": "{{original_input.city}}"}]}},
            },
            {
                "step_name": "left",
                "usid": "u-left",
                "service_url": f"{targets.url}/openai/{key}",
                "dependencies": ["root"],
                "outputs": ["summary"],
                "input_prep_config": {"body": {"text": "{{root_out.json.items[0].name}}"}},
            },
            {
                "step_name": "right",
                "usid": "u-right",
                "service_url": f"{targets.url}/echo/{key}",
                "dependencies": ["root"],
                "method": "GET",
                "input_prep_config": {
                    "query": {"tag": "{{original_input.tags[1]}}", "lang": "{{lang}}"}
                },
            },
            {
                "step_name": "join",
                "usid": "u-join",
                "service_url": f"{targets.url}/echo/{key}",
                "dependencies": ["left", "right"],
                "outputs": ["final"],
                "input_prep_config": {
                    "body": {
                        "summary": "{{summary}}",
                        "tag": "{{right_result.query.tag}}",
                        "line": "{{summary}} / {{right_result.query}}",
                    }
                },
            },
        ]
    )
    response = await gateway.http.post("/execute", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "completed"
    assert result["workflow_id"] == body["workflow_id"]
    assert result["progress"]["completed"] == 4
    assert result["outputs"]["summary"] == "summary of Lyon"
    assert result["outputs"]["final"]["json"] == {
        "summary": "summary of Lyon",
        "tag": "b",
        "line": 'summary of Lyon / {"tag": "b", "lang": "fr"}',
    }
    assert result["execution_time_ms"] >= 0
    stored = await redis.get(f"acme:{body['workflow_id']}:summary")
    assert stored == '"summary of Lyon"'


async def test_independent_slow_steps_overlap(gateway: Gateway, targets: Targets):
    keys = [unique("par") for _ in range(3)]
    steps = [
        {"step_name": f"s{i}", "usid": f"u{i}", "service_url": f"{targets.url}/slow/{k}?ms=600"}
        for i, k in enumerate(keys)
    ]
    started = time.monotonic()
    response = await gateway.http.post("/execute", json=payload(steps))
    elapsed = time.monotonic() - started
    assert response.json()["status"] == "completed"
    spans = [targets.state.spans[k] for k in keys]
    # Every step started before any other finished: they ran concurrently.
    assert max(start for start, _ in spans) < min(end for _, end in spans)
    assert elapsed < 3 * 0.6


async def test_step_starts_when_its_own_dependencies_finish(gateway: Gateway, targets: Targets):
    fast, slow, child = unique("fast"), unique("slow"), unique("child")
    response = await gateway.http.post(
        "/execute",
        json=payload(
            [
                {
                    "step_name": "fast",
                    "usid": "u1",
                    "service_url": f"{targets.url}/slow/{fast}?ms=50",
                },
                {
                    "step_name": "slow",
                    "usid": "u2",
                    "service_url": f"{targets.url}/slow/{slow}?ms=1500",
                },
                {
                    "step_name": "child",
                    "usid": "u3",
                    "service_url": f"{targets.url}/slow/{child}?ms=50",
                    "dependencies": ["fast"],
                },
            ]
        ),
    )
    assert response.json()["status"] == "completed"
    # Not level by level: `child` ran while `slow` (same level as `fast`) was still running.
    assert targets.state.spans[child][1] < targets.state.spans[slow][1]


async def test_failure_answers_partial_results_and_fails_in_temporal(
    gateway: Gateway, targets: Targets
):
    ok, bad = unique("ok"), unique("bad")
    body = payload(
        [
            {
                "step_name": "ok",
                "usid": "u1",
                "service_url": f"{targets.url}/echo/{ok}",
                "outputs": ["first"],
            },
            {
                "step_name": "bad",
                "usid": "u2",
                "service_url": f"{targets.url}/status/{bad}/422",
                "dependencies": ["ok"],
            },
        ],
        error_handling={"max_retries": 3, "retry_delay": 0.1},
    )
    response = await gateway.http.post("/execute", json=body)
    assert response.status_code == 200
    result = response.json()
    assert result["status"] == "failed"
    assert result["steps"]["ok"]["status"] == "completed"
    assert result["outputs"]["first"]["path"] == f"/echo/{ok}"
    assert result["error"]["step_name"] == "bad"
    assert result["error"]["http_status"] == 422
    assert result["error"]["attempts"] == 1
    assert targets.state.calls[bad] == 1
    handle = gateway.engine.client.get_workflow_handle(body["workflow_id"])
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    again = (await gateway.http.get(f"/runs/{body['workflow_id']}")).json()
    assert again["status"] == "failed"
    assert again["steps"]["ok"]["status"] == "completed"
    assert again["error"]["step_name"] == "bad"


async def test_retry_then_success_and_timeout(gateway: Gateway, targets: Targets):
    flaky, slow = unique("flaky"), unique("slow")
    result = (
        await gateway.http.post(
            "/execute",
            json=payload(
                [
                    {
                        "step_name": "flaky",
                        "usid": "u1",
                        "service_url": f"{targets.url}/flaky/{flaky}?failures=1&code=429",
                    }
                ],
                error_handling={"max_retries": 2, "retry_delay": 0.1},
            ),
        )
    ).json()
    assert result["status"] == "completed"
    assert result["steps"]["flaky"]["attempts"] == 2
    result = (
        await gateway.http.post(
            "/execute",
            json=payload(
                [
                    {
                        "step_name": "slow",
                        "usid": "u1",
                        "service_url": f"{targets.url}/slow/{slow}?ms=3000",
                    }
                ],
                error_handling={"max_retries": 0, "retry_delay": 0.1},
                timeouts={"step_timeout": 0.3},
            ),
        )
    ).json()
    assert result["status"] == "failed"
    assert result["error"]["step_name"] == "slow"
    assert "timed out" in result["error"]["message"]


async def test_selection_abort_cascade(gateway: Gateway, targets: Targets, redis):
    key = unique("sel")
    body = payload(
        [
            {
                "step_name": "a",
                "usid": "u-a",
                "service_url": f"{targets.url}/echo/{key}",
                "dependencies": ["selection_route"],
            },
            {
                "step_name": "b",
                "usid": "u-b",
                "service_url": f"{targets.url}/echo/{key}",
                "dependencies": ["selection_route"],
            },
            {
                "step_name": "b2",
                "usid": "u-b2",
                "service_url": f"{targets.url}/echo/{key}",
                "dependencies": ["b"],
            },
        ]
    )
    await redis.set(f"acme:{body['workflow_id']}:selection_route", "u-a")
    result = (await gateway.http.post("/execute", json=body)).json()
    assert result["status"] == "completed"
    assert {n: s["status"] for n, s in result["steps"].items()} == {
        "a": "completed",
        "b": "aborted",
        "b2": "aborted",
    }
    assert result["progress"]["aborted"] == 2


async def delivered(http: httpx.AsyncClient, workflow_id: str, events: int) -> dict[str, Any]:
    """The run's status once its outbox has delivered `events` events (after the run)."""

    async def done() -> dict[str, Any] | None:
        run = (await http.get(f"/runs/{workflow_id}")).json()
        return run if run["webhooks"]["delivered"] == events else None

    return await wait_until(done)


async def test_webhooks_in_order(gateway: Gateway, targets: Targets):
    key, hook = unique("k"), unique("hook")
    body = payload(
        [
            {
                "step_name": "a",
                "usid": "u-a",
                "service_url": f"{targets.url}/echo/{key}",
                "dependencies": ["selection_x"],
            },
            {"step_name": "b", "usid": "u-b", "service_url": f"{targets.url}/status/{key}/400"},
        ],
        notifications={"webhook_url": f"{targets.url}/hooks/{hook}"},
    )
    result = (await gateway.http.post("/execute", json=body)).json()
    assert result["status"] == "failed"
    assert result["webhooks"]["outbox_id"]
    run = await delivered(gateway.http, body["workflow_id"], 5)
    events = targets.state.hooks[hook]
    names = [(e["event"], e.get("step_name")) for e in events]
    assert names[0] == ("workflow.started", None)
    assert names[-1] == ("workflow.failed", None)
    assert ("step.aborted", "a") in names and ("step.failed", "b") in names
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["progress"] == {"completed": 0, "failed": 1, "aborted": 1, "total": 2}
    assert events[-1]["data"]["error"]["step_name"] == "b"
    # Per-event state in the run's status, under the ids the receiver saw.
    webhooks = run["webhooks"]
    assert (webhooks["undelivered"], webhooks["pending"], webhooks["failed"]) == (0, 0, 0)
    assert [(e["event_id"], e["state"]) for e in webhooks["events"]] == [
        (e["event_id"], "delivered") for e in events
    ]
    # Each delivered with a 200; a loaded machine may need a second attempt of one (its first
    # outlived the attempt timeout), which the status counts.
    assert [e["http_status"] for e in webhooks["events"]] == [200] * len(events)
    assert all(1 <= e["attempts"] <= 3 for e in webhooks["events"]), webhooks["events"]


def one_step(targets: Targets, hook_url: str | None) -> dict[str, Any]:
    notifications = {"webhook_url": hook_url} if hook_url else {}
    return payload(
        [{"step_name": "a", "usid": "u-a", "service_url": f"{targets.url}/echo/{unique('k')}"}],
        notifications=notifications,
    )


async def test_a_receiver_answering_500_does_not_slow_a_run_and_gets_every_event_once_back(
    gateway: Gateway, targets: Targets
):
    hook = unique("hook")
    targets.state.hooks_down.add(hook)

    async def timed(body: dict[str, Any]) -> float:
        started = time.monotonic()
        response = await gateway.http.post("/execute", json=body)
        assert response.status_code == 200 and response.json()["status"] == "completed"
        return time.monotonic() - started

    without = sorted([await timed(one_step(targets, None)) for _ in range(3)])[1]
    down = [one_step(targets, f"{targets.url}/hooks/{hook}") for _ in range(3)]
    with_dead_receiver = sorted([await timed(body) for body in down])[1]
    # As fast as without a webhook (medians of three; generous for a shared machine).
    assert with_dead_receiver < without + 0.5, (with_dead_receiver, without)

    workflow_id = down[0]["workflow_id"]

    async def retried() -> dict[str, Any] | None:
        webhooks = (await gateway.http.get(f"/runs/{workflow_id}")).json()["webhooks"]
        first = webhooks["events"][0]
        return webhooks if first["attempts"] >= 2 and first["last_error"] else None

    webhooks = await wait_until(retried)
    assert webhooks["delivered"] == 0 and webhooks["pending"] == 4
    first = webhooks["events"][0]
    assert first["state"] == "pending" and "500" in first["last_error"]
    assert first["next_attempt_at"] is not None
    assert "500" in webhooks["last_error"]
    ids = [e["event_id"] for e in webhooks["events"]]

    targets.state.hooks_down.discard(hook)
    for body in down:
        await delivered(gateway.http, body["workflow_id"], 4)
    received = [e for e in targets.state.hooks[hook] if e["workflow_id"] == workflow_id]
    # Every event once, in the run's order, under the ids the status showed.
    assert [e["event_id"] for e in received] == ids
    assert [e["sequence"] for e in received] == [1, 2, 3, 4]
    assert received[-1]["event"] == "workflow.completed"


@pytest.fixture
async def fast_giving_up_gateway(dev_engine: Engine) -> AsyncIterator[Gateway]:
    """A gateway whose runs give each webhook event a 2-second window, tried every second."""
    settings = dev_engine.settings.model_copy(
        update={
            "webhook_attempt_timeout_seconds": 1,
            "webhook_delivery_window_seconds": 2,
            "webhook_retry_max_interval_seconds": 1,
        }
    )
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        yield Gateway(url, http, dev_engine)


async def failed_events(http: httpx.AsyncClient, workflow_id: str, count: int) -> list[Any]:
    async def failed() -> list[Any] | None:
        webhooks = (await http.get(f"/runs/{workflow_id}")).json()["webhooks"]
        return webhooks["events"] if webhooks["failed"] >= count else None

    return await wait_until(failed)


async def test_failed_events_are_redelivered_while_the_run_goes_on(
    fast_giving_up_gateway: Gateway, targets: Targets
):
    http, hook, key = fast_giving_up_gateway.http, unique("hook"), unique("slow")
    targets.state.hooks_down.add(hook)
    body = payload(
        [{"step_name": "a", "usid": "u-a", "service_url": f"{targets.url}/slow/{key}?ms=6000"}],
        notifications={"webhook_url": f"{targets.url}/hooks/{hook}"},
    )
    assert (await http.post("/execute?wait=false", json=body)).status_code == 202
    workflow_id = body["workflow_id"]
    events = await failed_events(http, workflow_id, 2)
    assert [(e["event"], e["state"]) for e in events] == [
        ("workflow.started", "failed"),
        ("step.started", "failed"),
    ]
    assert "not delivered within its 2s window" in events[0]["last_error"]
    assert (await http.get(f"/runs/{workflow_id}")).json()["status"] == "running"

    targets.state.hooks_down.discard(hook)
    response = await http.post(f"/runs/{workflow_id}/webhooks/redeliver")
    assert response.status_code == 202, response.text
    assert response.json()["redelivering"] == [e["event_id"] for e in events]
    run = await delivered(http, workflow_id, 4)
    assert run["status"] == "completed"
    received = targets.state.hooks[hook]
    assert [e["sequence"] for e in received] == [1, 2, 3, 4]
    assert [e["event_id"] for e in received[:2]] == [e["event_id"] for e in events]
    assert [e["redeliveries"] for e in run["webhooks"]["events"]] == [1, 1, 0, 0]


async def test_failed_events_are_redelivered_after_the_outbox_closed(
    fast_giving_up_gateway: Gateway, targets: Targets
):
    http, hook = fast_giving_up_gateway.http, unique("hook")
    targets.state.hooks_down.add(hook)
    body = one_step(targets, f"{targets.url}/hooks/{hook}")
    assert (await http.post("/execute", json=body)).json()["status"] == "completed"
    workflow_id = body["workflow_id"]
    events = await failed_events(http, workflow_id, 4)
    assert all(e["state"] == "failed" and e["attempts"] >= 1 for e in events)
    ids = [e["event_id"] for e in events]

    targets.state.hooks_down.discard(hook)
    one = await http.post(f"/runs/{workflow_id}/webhooks/{ids[2]}/redeliver")
    assert one.status_code == 202, one.text
    assert one.json()["redelivering"] == [ids[2]]
    await delivered(http, workflow_id, 1)
    again = await http.post(f"/runs/{workflow_id}/webhooks/{ids[2]}/redeliver")
    assert again.status_code == 409 and "delivered" in again.json()["detail"]
    unknown = await http.post(f"/runs/{workflow_id}/webhooks/nope/redeliver")
    assert unknown.status_code == 404

    rest = await http.post(f"/runs/{workflow_id}/webhooks/redeliver", json={})
    assert rest.status_code == 202 and rest.json()["redelivering"] == [ids[0], ids[1], ids[3]]
    run = await delivered(http, workflow_id, 4)
    assert [e["state"] for e in run["webhooks"]["events"]] == ["delivered"] * 4
    # Each event once, under its first id; the redelivered one first, the rest in order.
    assert [e["event_id"] for e in targets.state.hooks[hook]] == [ids[2], ids[0], ids[1], ids[3]]


async def test_redelivery_needs_a_run_with_webhooks(gateway: Gateway, targets: Targets):
    body = one_step(targets, None)
    assert (await gateway.http.post("/execute", json=body)).status_code == 200
    response = await gateway.http.post(f"/runs/{body['workflow_id']}/webhooks/redeliver")
    assert response.status_code == 404 and "no webhook outbox" in response.json()["detail"]
    missing = await gateway.http.post("/runs/no-such-run/webhooks/redeliver")
    assert missing.status_code == 404


async def test_validation_errors_name_step_and_field(gateway: Gateway):
    response = await gateway.http.post(
        "/execute",
        json=payload(
            [
                {
                    "step_name": "a",
                    "usid": "u1",
                    "service_url": "ftp://x",
                    "method": "FETCH",
                    "dependencies": ["c"],
                },
                {"step_name": "a", "usid": "u1", "service_url": "http://127.0.0.1/x"},
            ]
        ),
    )
    assert response.status_code == 422
    problems = {tuple(p["loc"]): p["msg"] for p in response.json()["detail"]}
    assert ("body", "STEPS_CONFIG", 0, "method") in problems
    assert ("body", "STEPS_CONFIG", 0, "service_url") in problems
    assert ("body", "STEPS_CONFIG", 0, "dependencies", 0) in problems
    assert ("body", "STEPS_CONFIG", 1, "step_name") in problems
    assert ("body", "STEPS_CONFIG", 1, "usid") in problems


async def test_cycle_rejected_before_anything_runs(gateway: Gateway):
    body = payload(
        [
            {
                "step_name": "a",
                "usid": "u1",
                "service_url": "http://127.0.0.1/x",
                "dependencies": ["c"],
            },
            {
                "step_name": "b",
                "usid": "u2",
                "service_url": "http://127.0.0.1/x",
                "dependencies": ["a"],
            },
            {
                "step_name": "c",
                "usid": "u3",
                "service_url": "http://127.0.0.1/x",
                "dependencies": ["b"],
            },
        ]
    )
    response = await gateway.http.post("/execute", json=body)
    assert response.status_code == 422
    assert "a -> b -> c -> a" in response.json()["detail"][0]["msg"]
    assert (await gateway.http.get(f"/runs/{body['workflow_id']}")).status_code == 404


async def test_bad_requests_are_4xx_json_naming_the_field(gateway: Gateway):
    response = await gateway.http.post(
        "/execute", content=b'{"workflow_id": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    response = await gateway.http.post("/execute", json={"workflow_id": "x", "STEPS_CONFIG": 3})
    assert response.status_code == 422
    assert ["body", "STEPS_CONFIG"] in [p["loc"] for p in response.json()["detail"]]
    big = payload([{"step_name": "a", "usid": "u", "service_url": "http://127.0.0.1/x"}])
    big["original_input"] = "x" * (gateway.engine.settings.max_request_bytes + 1)
    response = await gateway.http.post("/execute", json=big)
    assert response.status_code == 413
    assert "MAX_REQUEST_BYTES" in response.json()["detail"][0]["msg"]


async def test_wait_false_then_live_status_then_attach(gateway: Gateway, targets: Targets):
    slow, fast = unique("slow"), unique("fast")
    body = payload(
        [
            {"step_name": "fast", "usid": "u1", "service_url": f"{targets.url}/echo/{fast}"},
            {
                "step_name": "slow",
                "usid": "u2",
                "service_url": f"{targets.url}/slow/{slow}?ms=2000",
                "dependencies": ["fast"],
            },
        ]
    )
    response = await gateway.http.post("/execute?wait=false", json=body)
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["status"] == "running" and accepted["run_id"]

    async def slow_running() -> dict[str, Any] | None:
        live = (await gateway.http.get(f"/runs/{body['workflow_id']}")).json()
        return live if live["steps"]["slow"]["status"] == "running" else None

    live = await wait_until(slow_running)
    assert live["status"] == "running"
    assert live["steps"]["fast"]["status"] == "completed"
    assert live["progress"]["completed"] == 1 and live["progress"]["running"] == 1

    attached = await gateway.http.post("/execute", json=body)
    result = attached.json()
    assert result["run_id"] == accepted["run_id"]
    assert result["status"] == "completed"
    assert targets.state.calls[slow] == 1


async def test_concurrent_reads_of_a_run_follow_its_steps(gateway: Gateway, targets: Targets):
    slow = unique("slow")
    body = payload(
        [
            {"step_name": "first", "usid": "u1", "service_url": f"{targets.url}/echo/{slow}"},
            {
                "step_name": "second",
                "usid": "u2",
                "service_url": f"{targets.url}/slow/{slow}?ms=1500",
                "dependencies": ["first"],
            },
        ]
    )
    assert (await gateway.http.post("/execute?wait=false", json=body)).status_code == 202
    path = f"/runs/{body['workflow_id']}"

    async def second_running() -> list[dict[str, Any]] | None:
        reads = await asyncio.gather(*(gateway.http.get(path) for _ in range(6)))
        answers = [read.json() for read in reads]
        running = all(a["steps"]["second"]["status"] == "running" for a in answers)
        return answers if running else None

    for live in await wait_until(second_running):
        assert live["status"] == "running"
        assert live["steps"]["first"]["status"] == "completed"
        assert live["progress"] == {**live["progress"], "completed": 1, "running": 1}

    async def completed() -> dict[str, Any] | None:
        answer = (await gateway.http.get(path)).json()
        return answer if answer["status"] == "completed" else None

    done = await wait_until(completed)
    # Read again once known finished: from its result, the same answer.
    reads = await asyncio.gather(*(gateway.http.get(path) for _ in range(3)))
    assert [read.json() for read in reads] == [done] * 3
    assert done["steps"]["second"]["status"] == "completed"
    assert done["progress"]["completed"] == 2


async def test_runs_found_by_search_attributes(gateway: Gateway, targets: Targets):
    body = payload([{"step_name": "a", "usid": "u", "service_url": f"{targets.url}/echo/x"}])
    await gateway.http.post("/execute", json=body)
    query = f"WorkflowStationEngine='dag' AND WorkflowStationId='{body['workflow_id']}'"

    async def listed() -> list[Any]:
        return [wf async for wf in gateway.engine.client.list_workflows(query)]

    found = await wait_until(listed)
    assert [wf.id for wf in found] == [body["workflow_id"]]


async def test_health_and_unknown_run(gateway: Gateway):
    assert (await gateway.http.get("/health/live")).json() == {"status": "ok"}
    body = (await gateway.http.get("/health")).json()
    assert (body["temporal"], body["redis"]) == ("ok", "ok")
    # The fixture's workers serve the main queue (endpoint queues: tests/e2e/test_readiness.py).
    assert body["task_queues"][gateway.engine.settings.task_queue] == "ok"
    assert (await gateway.http.get("/runs/does-not-exist")).status_code == 404


async def test_health_names_what_is_down(dev_env: WorkflowEnvironment):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(dev_env.client, closed)
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["temporal"] == "ok"
    assert body["redis"].startswith("down: ConnectionError")


async def test_live_status_shows_a_step_being_retried(gateway: Gateway, targets: Targets):
    key = unique("retrying")
    body = payload(
        [
            {
                "step_name": "flaky",
                "usid": "u1",
                "service_url": f"{targets.url}/flaky/{key}?failures=2&code=503",
            }
        ],
        error_handling={"max_retries": 2, "retry_delay": 1.5},
    )
    await gateway.http.post("/execute?wait=false", json=body)

    async def retrying() -> dict[str, Any] | None:
        step = (await gateway.http.get(f"/runs/{body['workflow_id']}")).json()["steps"]["flaky"]
        return step if step["last_failure"] else None

    step = await wait_until(retrying)
    assert step["status"] == "running"
    assert step["attempts"] >= 2
    assert "503" in step["last_failure"]
    assert step["next_attempt_at"] is not None
    final = (await gateway.http.post("/execute", json=body)).json()
    assert final["status"] == "completed"
    assert final["steps"]["flaky"]["attempts"] == 3


async def test_run_no_worker_has_picked_up_shows_its_steps_pending(
    dev_env: WorkflowEnvironment, redis_url: str, targets: Targets
):
    settings = make_settings(dev_env.client, redis_url)  # its task queue has no worker
    body = payload(
        [
            {"step_name": "a", "usid": "u1", "service_url": f"{targets.url}/echo/x"},
            {
                "step_name": "b",
                "usid": "u2",
                "service_url": f"{targets.url}/echo/x",
                "dependencies": ["a"],
            },
        ]
    )
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.post("/execute?wait=false", json=body)).status_code == 202
        started = time.monotonic()
        live = (await http.get(f"/runs/{body['workflow_id']}")).json()
    assert time.monotonic() - started < 5
    assert live["status"] == "running"
    assert {name: step["status"] for name, step in live["steps"].items()} == {
        "a": "pending",
        "b": "pending",
    }
    assert live["progress"]["total"] == 2
    assert live["namespace"] == "acme"
    await dev_env.client.get_workflow_handle(body["workflow_id"]).terminate()


async def test_a_synchronous_execute_waits_a_bounded_time_then_answers_202(
    gateway: Gateway, targets: Targets
) -> None:
    settings = gateway.engine.settings.model_copy(update={"sync_wait_seconds": 1.0})
    slow = unique("slow")
    body = payload(
        [{"step_name": "slow", "usid": "u1", "service_url": f"{targets.url}/slow/{slow}?ms=4000"}]
    )
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        started = time.monotonic()
        response = await http.post("/execute", json=body, timeout=30)
        waited = time.monotonic() - started

    assert response.status_code == 202
    assert waited < 3.5
    assert response.headers["location"] == f"/runs/{body['workflow_id']}"
    assert response.json()["status"] == "running"
    final = await wait_until(lambda: _finished(gateway, body["workflow_id"]), timeout=30)
    assert final["steps"]["slow"]["status"] == "completed"


async def _finished(gateway: Gateway, workflow_id: str) -> dict[str, Any] | None:
    status = (await gateway.http.get(f"/runs/{workflow_id}")).json()
    return status if status["status"] == "completed" else None


async def test_cancel_a_run_keeps_what_finished(gateway: Gateway, targets: Targets) -> None:
    fast, slow = unique("fast"), unique("slow")
    body = payload(
        [
            {"step_name": "fast", "usid": "u1", "service_url": f"{targets.url}/echo/{fast}"},
            {
                "step_name": "slow",
                "usid": "u2",
                "service_url": f"{targets.url}/slow/{slow}?ms=20000",
                "dependencies": ["fast"],
            },
        ]
    )
    await gateway.http.post("/execute?wait=false", json=body)
    workflow_id = body["workflow_id"]

    async def slow_running() -> bool:
        status = (await gateway.http.get(f"/runs/{workflow_id}")).json()
        return status["steps"]["slow"]["status"] == "running"

    await wait_until(slow_running)
    response = await gateway.http.post(f"/runs/{workflow_id}/cancel")
    assert response.status_code == 200

    async def cancelled() -> dict[str, Any] | None:
        status = (await gateway.http.get(f"/runs/{workflow_id}")).json()
        return status if status["status"] == "cancelled" else None

    final = await wait_until(cancelled)
    assert final["steps"]["fast"]["status"] == "completed"
    assert final["steps"]["fast"]["result"]["path"] == f"/echo/{fast}"
    assert final["steps"]["slow"]["status"] == "cancelled"
    again = await gateway.http.post(f"/runs/{workflow_id}/cancel")
    assert again.status_code == 409
    assert (await gateway.http.post("/runs/no-such-run/cancel")).status_code == 404


async def test_execution_mode_is_accepted_and_a_bad_one_is_named(
    gateway: Gateway, targets: Targets, redis
):
    key = unique("modes")
    steps = [
        {
            "step_name": "only",
            "usid": "u-only",
            "service_url": f"{targets.url}/echo/{key}",
            "outputs": ["said"],
            "input_prep_config": {"body": {"say": "fast"}},
        }
    ]
    body = payload(steps, execution={"mode": "fast"}, timeouts={"step_timeout": 10})
    response = await gateway.http.post("/execute", json=body)
    assert response.status_code == 200
    assert response.json()["outputs"]["said"]["json"] == {"say": "fast"}
    stored = await redis.get(f"acme:{body['workflow_id']}:said")
    assert stored is not None and '"fast"' in stored

    bad = await gateway.http.post("/execute", json=payload(steps, execution={"mode": "turbo"}))
    assert bad.status_code == 422
    [problem] = bad.json()["detail"]
    assert problem["loc"] == ["body", "PIPELINE_SETTINGS", "execution", "mode"]
