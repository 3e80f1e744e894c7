"""A run's event log: what `GET /runs/{id}/events` streams, with no Temporal import.

Every run keeps the events it emits (the webhook event model: `event`, `event_id`,
`sequence`, `workflow_id`, `run_id`, `timestamp`, `progress`, `data`, `step_name`), numbered
1, 2, 3… across its whole chain, and answers the `get_events` query with the ones after a
sequence number. The gateway streams a run by polling that query: reading a query adds
nothing to the run's history, where a long-polling update would record every poll.

Bounds, so a long run cannot grow without end:

- the log holds the newest `KEEP_EVENTS` events in memory; they share their values with the
  run's status (large values are references already), so each costs a small dict;
- one page is at most `limit` events and about `PAGE_MAX_BYTES` of JSON (always one event);
- a run that continues as new hands the newest `CARRY_EVENTS` (at most `CARRY_MAX_BYTES`) to
  the next run of its chain, enough for a client that follows the run live to miss nothing.

Older events are gone, never silently: a page says the first sequence it still holds
(`EventPage.first_sequence`), and the gateway tells a client asking from before it so.
"""

from __future__ import annotations

import json
from typing import Any, Final

from pydantic import BaseModel, Field

#: The query's name, as the gateway calls it on either engine.
GET_EVENTS_QUERY: Final = "get_events"
#: Events that end a run: the stream closes after one of them.
FINAL_EVENTS: Final = frozenset({"workflow.completed", "workflow.failed", "workflow.cancelled"})

KEEP_EVENTS = 10_000
PAGE_MAX_EVENTS = 500
#: Well under Temporal's 2 MiB payload limit for a query answer.
PAGE_MAX_BYTES = 1_048_576
CARRY_EVENTS = 1_000
CARRY_MAX_BYTES = 262_144


class EventsQuery(BaseModel):
    """Which events to answer: those after sequence `after`, at most `limit` of them."""

    after: int = Field(default=0, ge=0)
    limit: int = Field(default=PAGE_MAX_EVENTS, ge=1, le=PAGE_MAX_EVENTS)


class EventPage(BaseModel):
    """Events after the asked sequence, in order.

    `first_sequence`: the oldest event the run still holds (1 unless the log was trimmed or the
    run continued as new); asking from before `first_sequence - 1` misses events.
    `last_sequence`: the newest event emitted so far. `more`: this page stopped at a bound.
    """

    events: list[dict[str, Any]] = Field(default_factory=list)
    first_sequence: int = 1
    last_sequence: int = 0
    more: bool = False


def event_size(event: dict[str, Any]) -> int:
    return len(json.dumps(event, default=str))


class EventLog:
    """The newest events of a run, numbered on from `sequence` (the last one emitted before,
    by earlier runs of the chain), starting with those the previous run carried over."""

    def __init__(self, carried: list[dict[str, Any]] | None = None, sequence: int = 0) -> None:
        self._events: list[dict[str, Any]] = list(carried or [])
        self.sequence = sequence

    def append(self, event: dict[str, Any]) -> None:
        """Keep `event`, whose `sequence` is the log's next one (`next_sequence`)."""
        self.sequence = event["sequence"]
        self._events.append(event)
        if len(self._events) > KEEP_EVENTS + KEEP_EVENTS // 10:
            # Trimmed in batches, so appending stays cheap.
            del self._events[: len(self._events) - KEEP_EVENTS]

    def next_sequence(self) -> int:
        return self.sequence + 1

    @property
    def first_sequence(self) -> int:
        return self._events[0]["sequence"] if self._events else self.sequence + 1

    def page(self, query: EventsQuery) -> EventPage:
        first = self.first_sequence
        start = max(0, query.after - first + 1)
        events: list[dict[str, Any]] = []
        size = 0
        for event in self._events[start : start + query.limit]:
            size += event_size(event)
            if events and size > PAGE_MAX_BYTES:
                break
            events.append(event)
        last_sent = events[-1]["sequence"] if events else query.after
        return EventPage(
            events=events,
            first_sequence=first,
            last_sequence=self.sequence,
            more=last_sent < self.sequence and bool(events),
        )

    def carry(self) -> list[dict[str, Any]]:
        """The newest events for the next run of the chain, within the carry bounds."""
        carried: list[dict[str, Any]] = []
        size = 0
        for event in reversed(self._events[-CARRY_EVENTS:]):
            size += event_size(event)
            if size > CARRY_MAX_BYTES:
                break
            carried.append(event)
        return carried[::-1]
