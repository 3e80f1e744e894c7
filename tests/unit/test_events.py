"""The run event log's bounds: pages, trimming, what a continue-as-new carries."""

from __future__ import annotations

from typing import Any

from workflows.shared import events
from workflows.shared.events import EventLog, EventsQuery


def event(sequence: int, size: int = 10) -> dict[str, Any]:
    return {"event": "step.completed", "sequence": sequence, "data": "x" * size}


def filled(count: int, size: int = 10, start: int = 0) -> EventLog:
    log = EventLog(sequence=start)
    for _ in range(count):
        log.append(event(log.next_sequence(), size))
    return log


def test_a_page_is_the_events_after_the_asked_sequence() -> None:
    log = filled(10)
    page = log.page(EventsQuery(after=4, limit=3))
    assert [e["sequence"] for e in page.events] == [5, 6, 7]
    assert (page.first_sequence, page.last_sequence, page.more) == (1, 10, True)
    last = log.page(EventsQuery(after=7))
    assert [e["sequence"] for e in last.events] == [8, 9, 10] and not last.more
    assert log.page(EventsQuery(after=10)).events == []
    assert log.page(EventsQuery(after=99)).events == []


def test_a_page_is_bounded_in_bytes_but_holds_one_event_at_least() -> None:
    big = events.PAGE_MAX_BYTES // 3
    log = filled(5, size=big)
    page = log.page(EventsQuery(after=0))
    assert [e["sequence"] for e in page.events] == [1, 2]
    assert page.more
    huge = filled(2, size=events.PAGE_MAX_BYTES * 2)
    assert [e["sequence"] for e in huge.page(EventsQuery(after=0)).events] == [1]


def test_the_log_keeps_the_newest_events_and_says_where_it_starts() -> None:
    log = filled(events.KEEP_EVENTS + events.KEEP_EVENTS // 10 + 1)
    first = log.first_sequence
    assert first > 1
    page = log.page(EventsQuery(after=0, limit=2))
    # From before the log: the page starts at what is kept, and says so.
    assert page.first_sequence == first
    assert [e["sequence"] for e in page.events] == [first, first + 1]


def test_a_continued_run_numbers_on_from_the_carried_events() -> None:
    log = filled(events.CARRY_EVENTS + 50)
    carried = log.carry()
    assert len(carried) == events.CARRY_EVENTS
    assert carried[-1]["sequence"] == log.sequence
    following = EventLog(carried, log.sequence)
    assert following.first_sequence == log.sequence - events.CARRY_EVENTS + 1
    assert following.next_sequence() == log.sequence + 1
    # Carried events are bounded in bytes as well.
    heavy = filled(10, size=events.CARRY_MAX_BYTES // 4)
    assert [e["sequence"] for e in heavy.carry()] == [8, 9, 10]


def test_an_empty_continued_log_starts_after_the_chains_last_event() -> None:
    log = EventLog(sequence=12)
    page = log.page(EventsQuery(after=3))
    assert page.events == [] and page.first_sequence == 13 and page.last_sequence == 12


def test_the_stream_says_when_events_are_gone_before_sending_the_rest() -> None:
    from gateway.events import RunEventStream, SharedPolls

    stream = RunEventStream(runs=None, workflow_id="w", after=3, polls=SharedPolls())  # type: ignore[arg-type]
    page = EventLog([event(8), event(9)], sequence=9).page(EventsQuery(after=3))
    sent = stream.new_events(page)
    assert [(m.event, m.id) for m in sent] == [
        ("gap", None),
        ("step.completed", "8"),
        ("step.completed", "9"),
    ]
    assert '"first_sequence": 8' in str(sent[0].data) and '"after": 3' in str(sent[0].data)
    assert stream.after == 9
    assert stream.new_events(page) == []  # nothing twice
