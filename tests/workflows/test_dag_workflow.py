"""DagWorkflow in the time-skipping environment, with real activities, Redis and HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest
from standardwebhooks import Webhook
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from tests.conftest import (
    WEBHOOK_SECRET,
    Engine,
    Targets,
    _run_workers,
    make_settings,
    unique,
    wait_until,
)
from workflows.dag.models import DagRunInput, DagRunResult
from workflows.dag.workflow import DagWorkflow
from workflows.shared.outbox import WebhookOutboxWorkflow
from workflows.shared.webhooks import OutboxInput, WebhookDeliveries


def pipeline(steps: list[dict[str, Any]], **settings: Any) -> DagRunInput:
    return DagRunInput.model_validate(
        {
            "workflow_id": unique("wf"),
            "namespace": "tests",
            "original_input": "hello",
            "input_data": {"topic": "durability"},
            "STEPS_CONFIG": steps,
            "PIPELINE_SETTINGS": settings,
        }
    )


async def run(engine: Engine, payload: DagRunInput) -> DagRunResult:
    payload.engine.task_queue = engine.settings.task_queue
    return await engine.client.execute_workflow(
        DagWorkflow.run, payload, id=payload.workflow_id, task_queue=engine.settings.task_queue
    )


async def run_failing(engine: Engine, payload: DagRunInput) -> DagRunResult:
    with pytest.raises(WorkflowFailureError) as info:
        await run(engine, payload)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "PipelineFailed"
    return DagRunResult.model_validate(cause.details[0])


async def test_chain_substitutes_typed_values_and_parses_text(engine: Engine, targets: Targets):
    key = unique("chain")
    result = await run(
        engine,
        pipeline(
            [
                {
                    "step_name": "a",
                    "usid": "u-a",
                    "service_url": f"{targets.url}/echo/{key}",
                    "outputs": ["first"],
                    "input_prep_config": {"body": {"n": 3, "items": [1, 2]}},
                },
                {
                    "step_name": "b",
                    "usid": "u-b",
                    "service_url": f"{targets.url}/echo/{key}",
                    "dependencies": ["a"],
                    "method": "put",
                    "input_prep_config": {
                        "body": {
                            "whole": "{{first.json}}",
                            "n": "{{a_result.json.n}}",
                            "second": "{{first.json.items[1]}}",
                            "text": "n={{a_result.json.n}}",
                            "topic": "{{topic}}",
                        },
                        "query": {"q": "{{original_input}}"},
                        "headers": {"X-Topic": "{{input_data.topic}}"},
                    },
                },
                {
                    "step_name": "c",
                    "usid": "u-c",
                    "service_url": f"{targets.url}/text/{key}",
                    "method": "GET",
                    "dependencies": ["b"],
                    "outputs": ["words"],
                },
            ]
        ),
    )
    assert result.status == "completed"
    sent = targets.state.requests[key][1]
    assert sent["method"] == "PUT"
    assert sent["json"] == {
        "whole": {"n": 3, "items": [1, 2]},
        "n": 3,
        "second": 2,
        "text": "n=3",
        "topic": "durability",
    }
    assert sent["query"] == {"q": "hello"}
    assert sent["headers"]["x-topic"] == "durability"
    assert result.outputs["words"] == f"plain text for {key}"
    assert [s.status for s in result.steps.values()] == ["completed"] * 3
    assert result.progress.completed == 3 and result.progress.total == 3


async def test_default_body_carries_inputs_and_dependency_results(engine: Engine, targets: Targets):
    key = unique("default")
    result = await run(
        engine,
        pipeline(
            [
                {
                    "step_name": "a",
                    "usid": "u-a",
                    "service_url": f"{targets.url}/openai/{key}",
                    "outputs": ["summary"],
                    "input_prep_config": {"body": {"text": "x"}},
                },
                {
                    "step_name": "b",
                    "usid": "u-b",
                    "service_url": f"{targets.url}/echo/{key}",
                    "dependencies": ["a"],
                },
            ]
        ),
    )
    assert result.outputs["summary"] == "summary of x"
    body = targets.state.requests[key][0]["json"]
    assert body["original_input"] == "hello"
    assert body["input_data"] == {"topic": "durability"}
    assert body["dependencies"]["a"]["choices"][0]["message"]["content"] == "summary of x"


async def test_retry_then_success_counts_attempts(engine: Engine, targets: Targets):
    key = unique("flaky")
    result = await run(
        engine,
        pipeline(
            [
                {
                    "step_name": "a",
                    "usid": "u",
                    "service_url": f"{targets.url}/flaky/{key}?failures=2",
                }
            ],
            error_handling={"max_retries": 2, "retry_delay": 1},
        ),
    )
    assert result.steps["a"].status == "completed"
    assert result.steps["a"].attempts == 3
    assert targets.state.calls[key] == 3


async def test_client_error_fails_without_retry_and_keeps_partial_results(
    engine: Engine, targets: Targets
):
    ok, bad, slow = unique("ok"), unique("bad"), unique("slow")
    result = await run_failing(
        engine,
        pipeline(
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
                    "service_url": f"{targets.url}/status/{bad}/404",
                    "dependencies": ["ok"],
                },
                {
                    "step_name": "after",
                    "usid": "u3",
                    "service_url": f"{targets.url}/echo/{ok}",
                    "dependencies": ["bad"],
                },
                {
                    "step_name": "slow",
                    "usid": "u4",
                    "service_url": f"{targets.url}/slow/{slow}?ms=3000",
                    "dependencies": ["ok"],
                },
            ],
            error_handling={"max_retries": 3, "retry_delay": 1},
        ),
    )
    assert targets.state.calls[bad] == 1
    assert result.status == "failed"
    assert result.steps["ok"].status == "completed"
    assert result.outputs["first"]["path"] == f"/echo/{ok}"
    assert result.steps["bad"].status == "failed"
    assert result.steps["after"].status == "cancelled"
    assert result.steps["slow"].status == "cancelled"
    assert result.error is not None
    assert (result.error.step_name, result.error.type, result.error.http_status) == (
        "bad",
        "HttpClientError",
        404,
    )
    assert result.error.attempts == 1


async def test_server_errors_retry_until_attempts_run_out(engine: Engine, targets: Targets):
    key = unique("down")
    result = await run_failing(
        engine,
        pipeline(
            [{"step_name": "a", "usid": "u", "service_url": f"{targets.url}/status/{key}/500"}],
            error_handling={"max_retries": 2, "retry_delay": 1},
        ),
    )
    assert targets.state.calls[key] == 3
    assert result.error is not None
    assert (result.error.type, result.error.http_status, result.error.attempts) == (
        "HttpServerError",
        500,
        3,
    )


async def test_timeout_is_retried_then_fails(engine: Engine, targets: Targets):
    key = unique("timeout")
    result = await run_failing(
        engine,
        pipeline(
            [
                {
                    "step_name": "a",
                    "usid": "u",
                    "service_url": f"{targets.url}/slow/{key}?ms=5000",
                    "timeout": 0.5,
                }
            ],
            error_handling={"max_retries": 1, "retry_delay": 1},
        ),
    )
    assert targets.state.calls[key] == 2
    assert result.error is not None
    assert result.error.attempts == 2
    assert "timed out" in result.error.message


async def test_selection_from_redis_aborts_unselected_branch_and_its_dependents(
    engine: Engine, targets: Targets, redis
):
    key = unique("sel")
    payload = pipeline(
        [
            {
                "step_name": "chosen",
                "usid": "u-yes",
                "service_url": f"{targets.url}/echo/{key}",
                "dependencies": ["selection_branch"],
            },
            {
                "step_name": "skipped",
                "usid": "u-no",
                "service_url": f"{targets.url}/echo/{key}",
                "dependencies": ["selection_branch"],
            },
            {
                "step_name": "below",
                "usid": "u-below",
                "service_url": f"{targets.url}/echo/{key}",
                "dependencies": ["skipped"],
            },
            {
                "step_name": "join",
                "usid": "u-join",
                "service_url": f"{targets.url}/echo/{key}",
                "dependencies": ["chosen"],
            },
        ]
    )
    await redis.set(f"tests:{payload.workflow_id}:selection_branch", '["u-yes"]')
    result = await run(engine, payload)
    assert result.status == "completed"
    statuses = {name: step.status for name, step in result.steps.items()}
    assert statuses == {
        "chosen": "completed",
        "skipped": "aborted",
        "below": "aborted",
        "join": "completed",
    }
    assert "u-no" in (result.steps["skipped"].abort_reason or "")
    assert result.progress.aborted == 2
    assert targets.state.calls[key] == 2


async def test_selection_from_a_step_output(engine: Engine, targets: Targets):
    key = unique("selout")
    result = await run(
        engine,
        pipeline(
            [
                {
                    "step_name": "pick",
                    "usid": "u-pick",
                    "service_url": f"{targets.url}/echo/{key}",
                    "outputs": ["selection_route"],
                    "input_prep_config": {"body": "u-b, u-c"},
                },
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
            ]
        ),
    )
    # `pick` echoes a description whose main value is the whole body: not a list of usids.
    assert result.steps["a"].status == "aborted"
    assert result.steps["b"].status == "aborted"


async def test_outputs_are_written_to_redis_with_ttl(engine: Engine, targets: Targets, redis):
    key = unique("out")
    payload = pipeline(
        [
            {
                "step_name": "a",
                "usid": "u",
                "service_url": f"{targets.url}/openai/{key}",
                "outputs": ["summary", "copy"],
                "input_prep_config": {"body": {"text": "t"}},
            },
        ]
    )
    await run(engine, payload)
    assert await redis.get(f"tests:{payload.workflow_id}:summary") == '"summary of t"'
    assert await redis.get(f"tests:{payload.workflow_id}:copy") == '"summary of t"'
    ttl = await redis.ttl(f"tests:{payload.workflow_id}:summary")
    assert 7 * 24 * 3600 - 60 < ttl <= 7 * 24 * 3600


async def delivered_outbox(engine: Engine, result: DagRunResult) -> OutboxInput:
    """The run's outbox once it has closed.

    Tests whose receivers fail use the dev server (`dev_engine`): the time-skipping server
    does not skip an activity's retry backoff, and its long poll for a result gives up.
    """
    assert result.webhooks.outbox_id
    handle = engine.client.get_workflow_handle_for(
        WebhookOutboxWorkflow.run, result.webhooks.outbox_id
    )
    return await handle.result()


def verified(raw: bytes, headers: dict[str, str]) -> Any:
    return Webhook(WEBHOOK_SECRET).verify(raw, headers)


async def test_webhooks_arrive_in_order_with_progress(engine: Engine, targets: Targets):
    key, hook = unique("wh"), unique("hook")
    result = await run(
        engine,
        pipeline(
            [
                {"step_name": "a", "usid": "u-a", "service_url": f"{targets.url}/echo/{key}"},
                {
                    "step_name": "b",
                    "usid": "u-b",
                    "service_url": f"{targets.url}/echo/{key}",
                    "dependencies": ["a"],
                },
            ],
            notifications={"webhook_url": f"{targets.url}/hooks/{hook}"},
        ),
    )
    outbox = await delivered_outbox(engine, result)
    events = targets.state.hooks[hook]
    assert [e["event"] for e in events] == [
        "workflow.started",
        "step.started",
        "step.completed",
        "step.started",
        "step.completed",
        "workflow.completed",
    ]
    assert [e["sequence"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert len({e["event_id"] for e in events}) == 6
    assert events[2]["step_name"] == "a" and events[2]["usid"] == "u-a"
    assert [e["progress"]["completed"] for e in events] == [0, 0, 1, 1, 2, 2]
    assert all(e["progress"]["total"] == 2 for e in events)
    assert all(e["run_id"] == result.run_id and e["namespace"] == "tests" for e in events)
    assert events[0]["_headers"]["idempotency-key"] == events[0]["event_id"]
    assert events[0]["_headers"]["webhook-id"] == events[0]["event_id"]
    # Signed over the bytes sent (Standard Webhooks), checked with the spec's own library.
    for raw, event in zip(targets.state.hook_bodies[hook], events, strict=True):
        assert verified(raw, event["_headers"])["event_id"] == event["event_id"]
    summary = outbox.state.summary()
    assert (summary.delivered, summary.pending, summary.failed) == (6, 0, 0)
    assert [e.event_id for e in summary.events] == [e["event_id"] for e in events]
    assert all(e.state == "delivered" and e.attempts == 1 for e in summary.events)


async def test_a_receiver_answering_500_never_holds_up_the_run(
    dev_engine: Engine, targets: Targets
):
    engine = dev_engine
    key, hook = unique("down"), unique("hook")
    targets.state.hooks_down.add(hook)
    steps = [
        {
            "step_name": f"s{i}",
            "usid": f"u{i}",
            "service_url": f"{targets.url}/echo/{key}",
            "dependencies": [f"s{i - 1}"] if i else [],
        }
        for i in range(5)
    ]
    payload = pipeline(steps, notifications={"webhook_url": f"{targets.url}/hooks/{hook}"})
    payload.engine.webhook_retry_max_interval_seconds = 1
    result = await run(engine, payload)
    assert result.status == "completed"
    assert result.execution_time_ms is not None and result.execution_time_ms < 2000
    outbox_id = result.webhooks.outbox_id
    assert outbox_id
    handle = engine.client.get_workflow_handle_for(WebhookOutboxWorkflow.run, outbox_id)

    async def retried() -> WebhookDeliveries | None:
        status = await handle.query(WebhookOutboxWorkflow.get_status)
        return status if targets.state.hook_attempts[hook] >= 2 else None

    pending = await wait_until(retried)
    assert pending.delivered == 0 and pending.pending == 2 + 2 * 5
    assert [e.sequence for e in pending.events] == list(range(1, 13))
    assert all(e.state == "pending" for e in pending.events)
    assert targets.state.hooks[hook] == []

    targets.state.hooks_down.discard(hook)
    outbox = await handle.result()
    events = targets.state.hooks[hook]
    # Every event, once, in the run's order, under the id the status showed.
    assert [e["sequence"] for e in events] == list(range(1, 13))
    assert [e["event_id"] for e in events] == [e.event_id for e in pending.events]
    assert events[-1]["event"] == "workflow.completed"
    summary = outbox.state.summary()
    assert (summary.delivered, summary.undelivered) == (12, 0)
    assert summary.events[0].attempts >= 2 and summary.events[-1].attempts == 1


async def test_an_event_past_its_window_fails_and_the_next_is_still_tried(
    dev_engine: Engine, targets: Targets
):
    engine = dev_engine
    key, hook = unique("window"), unique("hook")
    targets.state.hooks_down.add(hook)
    payload = pipeline(
        [{"step_name": "a", "usid": "u-a", "service_url": f"{targets.url}/echo/{key}"}],
        notifications={"webhook_url": f"{targets.url}/hooks/{hook}"},
    )
    payload.engine.webhook_attempt_timeout_seconds = 1
    payload.engine.webhook_delivery_window_seconds = 3
    payload.engine.webhook_retry_max_interval_seconds = 1
    result = await run(engine, payload)
    assert result.status == "completed"
    outbox = await delivered_outbox(engine, result)
    summary = outbox.state.summary()
    assert (summary.delivered, summary.failed, summary.pending) == (0, 4, 0)
    first, *rest = summary.events
    assert first.attempts >= 2
    assert "not delivered within its 3s window" in (first.last_error or "")
    assert "500" in (first.last_error or "") and first.http_status == 500
    # The others' windows had passed by then: one attempt each, not a window each.
    assert [e.attempts for e in rest] == [1, 1, 1]
    assert summary.last_error == rest[-1].last_error


async def test_a_refused_event_fails_at_once(dev_engine: Engine, targets: Targets):
    engine = dev_engine
    key, hook = unique("refused"), unique("gone")
    result = await run(
        engine,
        pipeline(
            [{"step_name": "a", "usid": "u-a", "service_url": f"{targets.url}/echo/{key}"}],
            notifications={"webhook_url": f"{targets.url}/status/{hook}/410"},
        ),
    )
    started = time.monotonic()
    outbox = await delivered_outbox(engine, result)
    assert time.monotonic() - started < 10
    summary = outbox.state.summary()
    assert summary.failed == 4 and targets.state.calls[hook] == 4
    assert all(e.http_status == 410 and e.attempts == 1 for e in summary.events)
    assert "410" in (summary.last_error or "")


async def test_invalid_pipeline_started_directly_fails_with_problems(engine: Engine):
    payload = pipeline(
        [
            {
                "step_name": "a",
                "usid": "u1",
                "service_url": "http://127.0.0.1:1/x",
                "dependencies": ["b"],
            },
            {
                "step_name": "b",
                "usid": "u2",
                "service_url": "http://127.0.0.1:1/x",
                "dependencies": ["a"],
            },
        ]
    )
    with pytest.raises(WorkflowFailureError) as info:
        await run(engine, payload)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidPipeline"
    assert "a -> b -> a" in cause.message


#: How long the tests that take Redis away let a step retry it (the default is minutes; the
#: retries run in real time, whatever the time-skipping server does).
SHORT_STORE_WINDOW = 2.0


def short_store_window(payload: DagRunInput) -> DagRunInput:
    payload.engine.store_retry_window_seconds = SHORT_STORE_WINDOW
    return payload


async def test_unreachable_redis_fails_the_step_with_partial_results(
    time_skipping_env: WorkflowEnvironment, targets: Targets
):
    # Nothing listens on port 1: every selection read is refused.
    settings = make_settings(time_skipping_env.client, "redis://127.0.0.1:1/0")
    key = unique("noredis")
    payload = pipeline(
        [
            {"step_name": "first", "usid": "u-1", "service_url": f"{targets.url}/echo/{key}"},
            {
                "step_name": "picky",
                "usid": "u-2",
                "service_url": f"{targets.url}/echo/{key}",
                "dependencies": ["first", "selection_pick"],
            },
        ]
    )
    async for engine in _run_workers(time_skipping_env.client, settings, []):
        started = time.monotonic()
        result = await run_failing(engine, short_store_window(payload))
        elapsed = time.monotonic() - started
    assert result.steps["first"].status == "completed"
    assert result.steps["picky"].status == "failed"
    assert result.error is not None and result.error.step_name == "picky"
    assert targets.state.calls[key] == 1
    # Retried for the whole window, not much longer, and the reason names what to look at.
    assert SHORT_STORE_WINDOW <= elapsed < SHORT_STORE_WINDOW + 10
    assert result.error.message.startswith(
        "redis (retried for 2s, STORE_RETRY_WINDOW_SECONDS): Error 111 connecting to 127.0.0.1:1."
    )


async def test_unwritable_outputs_fail_the_step(
    time_skipping_env: WorkflowEnvironment, targets: Targets
):
    settings = make_settings(time_skipping_env.client, "redis://127.0.0.1:1/0")
    key = unique("nowrite")
    payload = pipeline(
        [
            {
                "step_name": "only",
                "usid": "u-1",
                "service_url": f"{targets.url}/echo/{key}",
                "outputs": ["kept"],
            }
        ]
    )
    async for engine in _run_workers(time_skipping_env.client, settings, []):
        result = await run_failing(engine, short_store_window(payload))
    assert result.steps["only"].status == "failed"
    assert result.error is not None
    assert result.error.message.startswith("redis (retried for 2s, STORE_RETRY_WINDOW_SECONDS): ")


async def test_bodies_and_header_values_by_method(engine: Engine, targets: Targets):
    key = unique("methods")
    await run(
        engine,
        pipeline(
            [
                {
                    "step_name": "delete_with_body",
                    "usid": "u1",
                    "method": "DELETE",
                    "service_url": f"{targets.url}/echo/{key}",
                    "input_prep_config": {"body": {"ids": [1, 2]}, "headers": {"X-Count": "{{n}}"}},
                },
                {
                    "step_name": "delete_default",
                    "usid": "u2",
                    "method": "DELETE",
                    "service_url": f"{targets.url}/echo/{key}",
                    "dependencies": ["delete_with_body"],
                },
                {
                    "step_name": "patch_default",
                    "usid": "u3",
                    "method": "PATCH",
                    "service_url": f"{targets.url}/echo/{key}",
                    "dependencies": ["delete_default"],
                    "headers": {"X-Filter": "{{filter}}"},
                },
            ]
        ).model_copy(update={"input_data": {"n": 3, "filter": {"a": True}}}),
    )
    sent = targets.state.requests[key]
    assert sent[0]["json"] == {"ids": [1, 2]}
    assert sent[0]["headers"]["x-count"] == "3"
    assert sent[1]["json"] is None
    assert set(sent[2]["json"]) == {"original_input", "input_data", "dependencies"}
    assert sent[2]["headers"]["x-filter"] == '{"a": true}'


async def test_every_attempt_of_a_step_repeats_its_idempotency_key(
    engine: Engine, targets: Targets
) -> None:
    flaky, other, own = unique("idem"), unique("idem"), unique("idem")
    steps = [
        {"step_name": "flaky", "usid": "u1", "service_url": f"{targets.url}/flaky/{flaky}"},
        {"step_name": "other", "usid": "u2", "service_url": f"{targets.url}/echo/{other}"},
        {
            "step_name": "own",
            "usid": "u3",
            "service_url": f"{targets.url}/echo/{own}",
            "headers": {"idempotency-key": "mine"},
        },
    ]
    await run(engine, pipeline(steps, error_handling={"max_retries": 2, "retry_delay": 0.01}))

    first, retried = (r["headers"]["idempotency-key"] for r in targets.state.requests[flaky])
    assert first == retried
    assert targets.state.requests[other][0]["headers"]["idempotency-key"] != first
    assert targets.state.requests[own][0]["headers"]["idempotency-key"] == "mine"


async def test_idempotency_keys_can_be_turned_off(engine: Engine, targets: Targets) -> None:
    key = unique("idem")
    step = {"step_name": "a", "usid": "u1", "service_url": f"{targets.url}/echo/{key}"}
    await run(engine, pipeline([step], error_handling={"idempotency_keys": False}))
    assert "idempotency-key" not in targets.state.requests[key][0]["headers"]


async def test_run_timeout_ends_the_run_with_the_finished_results(
    engine: Engine, targets: Targets
) -> None:
    fast, stuck = unique("fast"), unique("stuck")
    steps = [
        {"step_name": "fast", "usid": "u1", "service_url": f"{targets.url}/echo/{fast}"},
        {
            "step_name": "stuck",
            "usid": "u2",
            "service_url": f"{targets.url}/hang/{stuck}",
            "dependencies": ["fast"],
        },
        {
            "step_name": "after",
            "usid": "u3",
            "service_url": f"{targets.url}/echo/{fast}",
            "dependencies": ["stuck"],
        },
    ]
    started = time.monotonic()
    result = await run_failing(
        engine, pipeline(steps, timeouts={"step_timeout": 60, "run_timeout": 1.5})
    )
    assert time.monotonic() - started < 15
    assert result.status == "failed"
    assert result.error is not None
    assert (result.error.type, result.error.step_name) == ("TimedOut", None)
    assert "run_timeout of 1.5s" in result.error.message
    assert result.steps["fast"].status == "completed"
    assert result.steps["stuck"].status == "cancelled"
    assert result.steps["after"].status == "cancelled"


async def test_input_no_retry_can_heal_fails_the_run_with_its_reason(
    engine: Engine, targets: Targets
) -> None:
    # Started around the gateway (as the `temporal` CLI could): a step timeout far past any
    # bound. Building its timer overflows in workflow code; the run fails saying so, instead of
    # its workflow task failing for ever.
    payload = pipeline(
        [{"step_name": "a", "usid": "u1", "service_url": f"{targets.url}/echo/{unique('x')}"}]
    )
    payload.STEPS_CONFIG[0] = payload.STEPS_CONFIG[0].model_copy(update={"timeout": 1e17})
    payload.engine.task_queue = engine.settings.task_queue
    started = time.monotonic()
    with pytest.raises(WorkflowFailureError) as info:
        await engine.client.execute_workflow(
            DagWorkflow.run,
            payload,
            id=payload.workflow_id,
            task_queue=engine.settings.task_queue,
        )
    assert time.monotonic() - started < 30
    assert isinstance(info.value.cause, ApplicationError)
    assert info.value.cause.type in ("PayloadUndecodable", "OverflowError")
