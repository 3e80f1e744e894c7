"""`workflow-station run --follow` draws each event from the event itself
(`cli.render.apply_event`), shows streamed text as it comes (`apply_delta`), and reads the
run's whole status only now and then."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from cli.render import apply_delta, apply_event, progress_view
from gateway.client import SseParser


def status() -> dict[str, Any]:
    return {
        "workflow_id": "wf-1",
        "status": "running",
        "steps": {"fetch": {"status": "pending"}, "store": {"status": "pending"}},
        "progress": {"completed": 0, "failed": 0, "aborted": 0, "running": 0, "total": 2},
    }


def event(name: str, step: str | None, completed: int) -> dict[str, Any]:
    progress = {"completed": completed, "failed": 0, "aborted": 0, "total": 2}
    return {"event": name, "sequence": 1, "step_name": step, "progress": progress}


def test_a_step_event_moves_its_step_and_the_progress() -> None:
    run = status()
    apply_event(run, event("step.started", "fetch", 0))
    assert run["steps"]["fetch"]["status"] == "running"
    apply_event(run, event("step.completed", "fetch", 1))
    apply_event(run, event("step.failed", "store", 1))
    assert run["steps"] == {"fetch": {"status": "completed"}, "store": {"status": "failed"}}
    # The event's counts over the status's, and what the event does not count kept.
    assert run["progress"] == {"completed": 1, "failed": 0, "aborted": 0, "running": 0, "total": 2}


def test_events_that_name_no_known_step_change_no_step() -> None:
    run = status()
    apply_event(run, event("workflow.started", None, 0))
    apply_event(run, event("step.completed", "not-in-this-run", 1))
    apply_event(run, "not an event")
    assert {step["status"] for step in run["steps"].values()} == {"pending"}
    assert run["progress"]["completed"] == 1


def test_a_waiting_step_and_a_paused_run_are_drawn_so() -> None:
    run = status()
    apply_event(run, event("step.waiting", "fetch", 0))
    assert run["steps"]["fetch"]["status"] == "waiting"
    apply_event(run, event("workflow.paused", None, 0))
    assert run["status"] == "paused"
    apply_event(run, event("workflow.resumed", None, 0))
    assert run["status"] == "running"


def delta(step: str, text: str, attempt: int = 1) -> dict[str, Any]:
    return {"event": "step.delta", "step_name": step, "attempt": attempt, "delta": text}


def test_streamed_chunks_add_up_to_each_steps_text_on_screen() -> None:
    streamed: dict[str, str] = {}
    attempts: dict[str, int] = {}
    for data in (delta("ask", "Hello "), delta("other", "Bonjour"), delta("ask", "world")):
        apply_delta(streamed, attempts, data)
    assert streamed == {"ask": "Hello world", "other": "Bonjour"}
    console = Console(width=100, record=True)
    console.print(progress_view(status(), streamed))
    screen = console.export_text()
    assert "ask: Hello world" in screen and "other: Bonjour" in screen


def test_a_retried_call_streams_its_text_over() -> None:
    streamed: dict[str, str] = {}
    attempts: dict[str, int] = {}
    apply_delta(streamed, attempts, delta("ask", "half an ans"))
    apply_delta(streamed, attempts, delta("ask", "A whole ", attempt=2))
    apply_delta(streamed, attempts, delta("ask", "answer", attempt=2))
    assert streamed == {"ask": "A whole answer"}


def test_the_client_resumes_from_an_id_that_holds_both_places() -> None:
    parser = SseParser()
    for line in ("event: step.delta", "id: 7:1733559000000-3", 'data: {"delta": "x"}'):
        assert parser.feed(line) is None
    event = parser.feed("")
    assert event is not None
    assert (event.id, event.cursor) == (7, "7:1733559000000-3")
