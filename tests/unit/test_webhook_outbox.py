"""The outbox's bookkeeping (`OutboxState`): order, settling, redelivery, what a status lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from workflows.shared import webhooks
from workflows.shared.webhooks import DeliveryPolicy, OutboxState, outbox_workflow_id

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def event(sequence: int, name: str = "step.started") -> dict[str, Any]:
    return {"event": name, "event_id": f"run:{sequence}", "sequence": sequence, "step_name": "a"}


def deliver_all(state: OutboxState) -> list[int]:
    order = []
    while (next_event := state.next_event()) is not None:
        order.append(next_event.sequence)
        state.delivered(next_event.event_id, 200, 1, NOW)
    return order


def test_events_are_delivered_in_the_runs_order_even_when_signals_overtake() -> None:
    state = OutboxState()
    assert state.enqueue([event(1), event(2)], NOW) == 2
    assert state.enqueue([event(5), event(6)], NOW) == 2  # came before 3 and 4
    assert deliver_all(state) == [1, 2]
    assert state.summary().pending == 2  # held, counted
    state.enqueue([event(3), event(4)], NOW)
    assert deliver_all(state) == [3, 4, 5, 6]
    assert not state.held


def test_an_event_seen_twice_is_queued_once() -> None:
    state = OutboxState()
    state.enqueue([event(1), event(1)], NOW)
    state.enqueue([event(3)], NOW)
    state.enqueue([event(3)], NOW)
    state.enqueue([event(2)], NOW)
    assert deliver_all(state) == [1, 2, 3]
    assert state.enqueue([event(2)], NOW) == 0


def test_the_outbox_finishes_once_the_run_ended_and_every_event_is_settled() -> None:
    state = OutboxState()
    state.enqueue([event(2)], NOW)
    state.closed = True
    assert not state.finished  # event 1 is still on its way
    state.flush_held(NOW)  # the run is surely over: deliver what came
    assert not state.finished
    assert deliver_all(state) == [2]
    assert state.finished


def test_failed_events_keep_their_body_and_error_and_are_redelivered_after_the_queue() -> None:
    state = OutboxState()
    state.enqueue([event(1), event(2), event(3)], NOW)
    state.failed("run:1", "answered 500", 7, 500)
    assert [e.sequence for e in state.events.values() if e.payload] == [1, 2, 3]
    later = NOW + timedelta(hours=7)
    result = state.redeliver(None, later)
    assert result.redelivering == ["run:1"]
    assert state.queue == ["run:2", "run:3", "run:1"]
    redelivered = state.events["run:1"]
    assert (redelivered.state, redelivered.enqueued_at, redelivered.redeliveries) == (
        "pending",
        later,
        1,
    )
    assert deliver_all(state) == [2, 3, 1]
    assert state.events["run:1"].attempts == 8 and state.events["run:1"].payload is None
    assert state.summary().last_error == "answered 500"


def test_redelivery_names_what_it_cannot_redeliver() -> None:
    state = OutboxState()
    state.enqueue([event(1), event(2)], NOW)
    state.delivered("run:1", 200, 1, NOW)
    result = state.redeliver(["run:1", "run:2", "nope"], NOW)
    assert result.redelivering == []
    assert result.not_failed == {"run:1": "delivered", "run:2": "pending"}
    assert result.unknown == ["nope"]


def test_only_the_next_event_can_be_settled() -> None:
    state = OutboxState()
    state.enqueue([event(1), event(2)], NOW)
    with pytest.raises(ValueError, match="not the next"):
        state.delivered("run:2", 200, 1, NOW)


def test_a_status_lists_undelivered_events_first_when_there_are_many(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(webhooks, "KEEP_DELIVERED", 4)
    state = OutboxState()
    state.enqueue([event(n) for n in range(1, 11)], NOW)
    for _ in range(6):
        next_event = state.next_event()
        assert next_event is not None
        state.delivered(next_event.event_id, 200, 1, NOW)
    # Only the newest 4 delivered records are kept; the others are counted.
    assert state.forgotten_delivered == 2 and len(state.events) == 8
    summary = state.summary(limit=6)
    assert (summary.delivered, summary.pending, summary.undelivered) == (6, 4, 4)
    assert [e.sequence for e in summary.events] == [5, 6, 7, 8, 9, 10]
    assert summary.events_omitted == 4
    everything = state.summary(limit=100)
    assert [e.sequence for e in everything.events] == list(range(3, 11))


def test_an_event_gets_its_window_and_a_last_chance_once_it_has_passed() -> None:
    policy = DeliveryPolicy(attempt_timeout_seconds=10, window_seconds=3600)
    state = OutboxState()
    state.enqueue([event(1)], NOW)
    queued = state.events["run:1"]
    assert policy.delivery_budget(queued, NOW + timedelta(minutes=10)) == (
        timedelta(minutes=50),
        False,
    )
    assert policy.delivery_budget(queued, NOW + timedelta(hours=2)) == (
        timedelta(seconds=10),
        True,
    )


def test_one_outbox_per_run() -> None:
    assert outbox_workflow_id("wf-1", "run-a") != outbox_workflow_id("wf-1", "run-b")
    assert outbox_workflow_id("wf-1", "run-a") == "wf-1/webhooks/run-a"
