"""Segments (`workflows.dag.segment`) in a real run: a fast run's connected steps in one local
activity, as its history, status and events show them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError

from activities.http.models import IDEMPOTENCY_KEY_HEADER, idempotency_key
from tests.conftest import Engine, Targets, unique, wait_until
from tests.workflows.test_dag_workflow import pipeline, run_failing
from tests.workflows.test_execution_modes import (
    local_activities,
    replays,
    run_in_mode,
    scheduled_activities,
)
from workflows.dag.models import DagRunInput
from workflows.dag.segment import RUN_SEGMENT
from workflows.dag.workflow import DagWorkflow
from workflows.shared.events import EventsQuery


def slow(targets: Targets, name: str, key: str, ms: int, *deps: str) -> dict[str, Any]:
    return {
        "step_name": name,
        "usid": f"u-{name}",
        "service_url": f"{targets.url}/slow/{key}-{name}?ms={ms}",
        "method": "GET",
        "dependencies": list(deps),
    }


async def events_of(engine: Engine, payload: DagRunInput) -> list[tuple[str, str | None]]:
    handle = engine.client.get_workflow_handle(payload.workflow_id)
    page = await handle.query(DagWorkflow.get_events, EventsQuery())
    return [(event["event"], event.get("step_name")) for event in page.events]


async def test_a_segment_runs_no_more_steps_at_once_than_max_parallel(
    engine: Engine, targets: Targets
):
    key = unique("wide")
    steps = [slow(targets, f"s{i}", key, 150) for i in range(6)]
    payload = pipeline(steps, concurrency={"max_parallel": 2})
    result, history = await run_in_mode(engine, payload, "fast")
    assert result.status == "completed"
    # The steps left for lack of room joined the first two in the one segment.
    assert local_activities(history) == [RUN_SEGMENT]
    spans = sorted(targets.state.spans[f"{key}-s{i}"] for i in range(6))
    most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert most == 2
    await replays(engine, history)


async def test_steps_below_the_first_ones_are_seen_when_the_segment_reports(
    engine: Engine, targets: Targets
):
    key = unique("events")
    payload = pipeline([slow(targets, "a", key, 10), slow(targets, "b", key, 10, "a")])
    result, _ = await run_in_mode(engine, payload, "fast")
    assert result.status == "completed"
    assert await events_of(engine, payload) == [
        ("workflow.started", None),
        ("step.started", "a"),
        ("step.completed", "a"),
        ("step.started", "b"),
        ("step.completed", "b"),
        ("workflow.completed", None),
    ]
    b = result.steps["b"]
    assert b.started_at is not None and b.finished_at is not None
    assert b.started_at < b.finished_at


async def test_a_long_chain_reports_at_its_checkpoints(engine: Engine, targets: Targets):
    key = unique("checkpoint")
    # Three steps of 0.6 s: the third cannot start before the 1 s checkpoint.
    payload = pipeline(
        [
            slow(targets, "a", key, 600),
            slow(targets, "b", key, 600, "a"),
            slow(targets, "c", key, 600, "b"),
        ]
    )
    result, history = await run_in_mode(engine, payload, "fast")
    assert result.status == "completed"
    segments = local_activities(history)
    assert len(segments) >= 2 and set(segments) == {RUN_SEGMENT}
    assert [targets.state.calls[f"{key}-{name}"] for name in "abc"] == [1, 1, 1]
    await replays(engine, history)


async def test_a_failed_step_cancels_its_segment_and_fails_the_run(
    engine: Engine, targets: Targets
):
    key = unique("fails")
    payload = pipeline(
        [
            {
                "step_name": "bad",
                "usid": "u-bad",
                "service_url": f"{targets.url}/status/{key}-bad/400",
                "method": "GET",
            },
            slow(targets, "slow", key, 5000),
            slow(targets, "after", key, 10, "slow"),
        ],
        error_handling={"max_retries": 0},
    )
    payload.engine.execution_mode = "fast"
    result = await run_failing(engine, payload)
    assert result.error is not None and result.error.step_name == "bad"
    assert result.error.http_status == 400
    assert result.steps["bad"].status == "failed"
    assert result.steps["slow"].status == "cancelled"
    assert result.steps["after"].status == "cancelled"
    assert targets.state.calls[f"{key}-after"] == 0
    assert result.progress.completed == 0 and result.progress.failed == 1


async def test_a_step_that_cannot_render_fails_inside_the_segment(engine: Engine, targets: Targets):
    key = unique("template")
    second = slow(targets, "b", key, 10, "a")
    second["service_url"] = f"{targets.url}/slow/{{{{a_result.nothere}}}}"
    payload = pipeline([slow(targets, "a", key, 10), second])
    payload.engine.execution_mode = "fast"
    result = await run_failing(engine, payload)
    assert result.steps["a"].status == "completed"
    error = result.steps["b"].error
    assert error is not None and error.type == "TemplateError"
    assert "nothere" in error.message


async def test_segment_steps_send_the_runs_idempotency_keys(engine: Engine, targets: Targets):
    key = unique("idem")
    steps = [
        {
            "step_name": name,
            "usid": f"u-{name}",
            "service_url": f"{targets.url}/echo/{key}",
            "dependencies": deps,
        }
        for name, deps in (("a", []), ("b", ["a"]))
    ]
    payload = pipeline(steps, error_handling={"idempotency_keys": True})
    result, history = await run_in_mode(engine, payload, "fast")
    assert result.status == "completed"
    assert scheduled_activities(history) == []
    run_id = history.events[0].workflow_execution_started_event_attributes.original_execution_run_id
    sent = [
        request["headers"][IDEMPOTENCY_KEY_HEADER.lower()]
        for request in targets.state.requests[key]
    ]
    assert sent == [idempotency_key(run_id, "a"), idempotency_key(run_id, "b")]


async def start_fast(engine: Engine, payload: DagRunInput) -> WorkflowHandle[Any, Any]:
    """Start a fast run whose workflow task timeout is 2 s. While a local activity runs, its
    workflow task stays open and is renewed at 80% of that timeout: that is when the run hears
    of a failure elsewhere or of its cancellation (in 1.6 s here, 8 s by default)."""
    payload.engine.task_queue = engine.settings.task_queue
    payload.engine.execution_mode = "fast"
    return await engine.client.start_workflow(
        DagWorkflow.run,
        payload,
        id=payload.workflow_id,
        task_queue=engine.settings.task_queue,
        task_timeout=timedelta(seconds=2),
    )


async def test_a_step_failing_outside_a_segment_cancels_the_segment(
    engine: Engine, targets: Targets
):
    key = unique("outside")
    bad = {
        "step_name": "bad",
        "usid": "u-bad",
        "service_url": f"{targets.url}/status/{key}-bad/400",
        "method": "GET",
        # Too long for a local activity: a regular one, outside any segment.
        "timeout": 120,
    }
    payload = pipeline(
        [bad, slow(targets, "slow", key, 30_000), slow(targets, "after", key, 10, "slow")],
        error_handling={"max_retries": 0},
    )
    handle = await start_fast(engine, payload)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    result = await handle.query(DagWorkflow.get_status)
    assert result.error is not None and result.error.step_name == "bad"
    assert result.steps["slow"].status == "cancelled"
    assert result.steps["after"].status == "cancelled"
    assert targets.state.calls[f"{key}-after"] == 0


async def test_a_cancelled_run_cancels_its_segment(engine: Engine, targets: Targets):
    key = unique("cancel")
    payload = pipeline([slow(targets, "a", key, 10), slow(targets, "b", key, 30_000, "a")])
    handle = await start_fast(engine, payload)

    async def b_started() -> bool:
        return targets.state.calls[f"{key}-b"] == 1

    await wait_until(b_started)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert isinstance(info.value.cause, CancelledError)
    status = await handle.query(DagWorkflow.get_status)
    assert status.status == "cancelled"
    # Both steps were in one segment, which was cancelled before it could report: the run
    # never saw `a` complete, and says so rather than inventing an outcome.
    assert status.steps["a"].status == "cancelled"
    assert status.steps["b"].status == "cancelled"
