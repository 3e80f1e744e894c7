"""A run's live progress as Server-Sent Events (`GET /runs/{id}/events`).

The stream polls the run's `get_events` query (`workflows.shared.events`) every
`POLL_SECONDS` while the run goes on (streams of one run at one position share each poll,
`SharedPolls`; a tenant holds at most TENANT_MAX_EVENT_STREAMS open,
`gateway.stream_slots`), and sends each event once, in order, under its
sequence number as the SSE id, so a client that reconnects with `Last-Event-ID: k` gets
exactly the events after k. A query reads the workflow's memory and adds nothing to its
history, so any number of watchers cost the run nothing durable.

What a client can receive, besides the run's own events (`workflow.started`, `step.started`,
`step.completed`, `step.failed`, `step.aborted`, `workflow.completed` …):

- `gap` (no id): the run no longer holds the events between the asked sequence and
  `first_sequence` (trimmed from a very long log, or older than what a continue-as-new carried
  over); the run's status (`GET /runs/{id}`) has their outcome;
- `step.delta` and `step.waiting_for_rate_limit`, the run's live events (`gateway.live`):
  a streamed answer's chunks, in order, and a call waiting for its rate-limit slot. They
  come after the run's event page of the same poll, so a step's first chunk never precedes
  its `step.started`, though its last chunks may follow its `step.completed` by one poll.
  Once a live event was sent, every id holds both places (`<sequence>:<stream id>`);
- `end` (no id), last: the run has ended (`status`: completed, failed, cancelled, terminated,
  timed_out; `last`: the last sequence sent) and every event it logged was sent.
  EventSource reconnects when a stream closes; a client closes on `end`, and one that
  reconnects anyway gets `end` again at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any, TypeVar

from sse_starlette import ServerSentEvent
from temporalio.client import (
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError

from gateway.live import EventCursor, LiveEvents
from gateway.runs.engine import FIRST_TASK_DONE_EVENTS, STATUS_QUERY_TIMEOUT
from gateway.runs.listing import listed_state
from gateway.runs.service import RunStatusService
from workflows.shared.events import FINAL_EVENTS, GET_EVENTS_QUERY, EventPage, EventsQuery

#: How often a running run is asked for new events: live to a person, a few cheap queries a
#: second to the worker that holds the run in its cache.
POLL_SECONDS = 0.25
#: SSE comments sent while nothing happens, so proxies keep an idle stream open.
PING_SECONDS = 15


T = TypeVar("T")


class SharedPolls:
    """One describe and one event query per run and position per `POLL_SECONDS`, however
    many streams follow the run: streams that ask the same within that time (every viewer
    of a live run that has caught up asks for the events after the same sequence) share the
    answer, or the call in flight, instead of each asking the worker four times a second."""

    #: Past this many remembered answers, those older than `POLL_SECONDS` are forgotten.
    PRUNE_ABOVE = 256

    def __init__(self) -> None:
        self._answers: dict[Hashable, tuple[float, asyncio.Future[Any]]] = {}

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[T]]) -> T:
        now = time.monotonic()
        known = self._answers.get(key)
        if known is None or now - known[0] >= POLL_SECONDS:
            if len(self._answers) > self.PRUNE_ABOVE:
                self._answers = {
                    k: v for k, v in self._answers.items() if now - v[0] < POLL_SECONDS
                }
            known = (now, asyncio.ensure_future(fetch()))
            self._answers[key] = known
        # Shielded: a client that leaves does not cancel the call the others wait for.
        answer: T = await asyncio.shield(known[1])
        return answer


def sse(event: str, data: Any, event_id: int | str | EventCursor | None = None) -> ServerSentEvent:
    return ServerSentEvent(
        data=json.dumps(data, default=str),
        event=event,
        id=str(event_id) if event_id is not None else None,
    )


class RunEventStream:
    """One client's stream of one run: its events after `after`, then `end`."""

    def __init__(
        self,
        runs: RunStatusService,
        workflow_id: str,
        after: int,
        polls: SharedPolls,
        live: LiveEvents | None = None,
        live_after: str = "0",
    ) -> None:
        self.runs = runs
        self.workflow_id = workflow_id
        self.after = after
        self.polls = polls
        self.live = live
        self.live_after = live_after

    @property
    def cursor(self) -> EventCursor:
        return EventCursor(self.after, self.live_after)

    async def read_live(self) -> list[tuple[str, dict[str, Any]]]:
        """The run's live events after the last one sent."""
        return [] if self.live is None else await self.live.after(self.live_after)

    def send_live(self, read: list[tuple[str, dict[str, Any]]]) -> list[ServerSentEvent]:
        """Live events as sent: each id holds the place of the event itself, so an event
        sent before them never claims them."""
        sent = []
        for stream_id, event in read:
            self.live_after = stream_id
            event["workflow_id"] = self.workflow_id
            sent.append(sse(event["event"], event, self.cursor))
        return sent

    @property
    def temporal_id(self) -> str:
        """The run as Temporal names it: streams of two tenants never share a poll."""
        return self.runs.tenant.workflow_id(self.workflow_id)

    async def describe(self) -> WorkflowExecutionDescription:
        return await self.polls.get(
            ("describe", self.temporal_id),
            lambda: self.runs.describe(self.workflow_id, "workflow_id"),
        )

    async def events(self, description: WorkflowExecutionDescription) -> AsyncIterator[Any]:
        """Poll until the run has ended and everything it logged was sent.

        `description` is taken before each query, so once it says the run is closed, the
        query that follows holds every event the run will ever log.
        """
        #: The run's newest sequence, once a query said it: a client resuming past it (an id
        #: from another run) is told where the run's log really ends.
        newest: int | None = None
        while True:
            running = description.status in (
                WorkflowExecutionStatus.RUNNING,
                WorkflowExecutionStatus.CONTINUED_AS_NEW,
            )
            page = None
            # Read before the page: each chunk read belongs to a step the page knows started.
            live = await self.read_live()
            if description.history_length >= FIRST_TASK_DONE_EVENTS or not running:
                page = await self.query(description)
            if page is not None:
                newest = page.last_sequence
                for event in self.new_events(page):
                    yield event
            for event in self.send_live(live):
                yield event
            if page is not None:
                if page.more:
                    description = await self.describe()
                    continue
                last = page.events[-1]["event"] if page.events else None
                if last in FINAL_EVENTS:
                    # Logged as the run ends: nothing follows it but the last chunks.
                    for event in self.send_live(await self.read_live()):
                        yield event
                    yield sse("end", {"status": last.removeprefix("workflow."), "last": self.after})
                    return
                if not running:
                    break
            elif not running:
                break  # closed, and no worker could answer the query
            await asyncio.sleep(POLL_SECONDS)
            description = await self.describe()
        for event in self.send_live(await self.read_live()):
            yield event
        last = self.after if newest is None else min(self.after, newest)
        yield sse("end", {"status": listed_state(description.status), "last": last})

    async def query(self, description: WorkflowExecutionDescription) -> EventPage | None:
        """The next page, or None while no worker answers (a restart; it is asked again).

        Shared only between streams holding a description of the run at the same history
        length and status: a page is never older than the description it is read with, so a
        closed run's page still holds every event it logged.
        """
        key = (
            "events",
            self.temporal_id,
            self.after,
            description.history_length,
            description.status,
        )
        return await self.polls.get(key, self._query)

    async def _query(self) -> EventPage | None:
        try:
            page: EventPage = await self.runs.handle(self.workflow_id).query(
                GET_EVENTS_QUERY,
                EventsQuery(after=self.after),
                result_type=EventPage,
                rpc_timeout=STATUS_QUERY_TIMEOUT,
            )
        except (RPCError, WorkflowQueryFailedError):
            return None
        return page

    def new_events(self, page: EventPage) -> list[ServerSentEvent]:
        sent: list[ServerSentEvent] = []
        if page.events and page.first_sequence > self.after + 1:
            missed = {"after": self.after, "first_sequence": page.first_sequence}
            sent.append(sse("gap", missed))
        for event in page.events:
            if event["sequence"] <= self.after:
                continue
            self.after = event["sequence"]
            sent.append(sse(event["event"], event, self.cursor))
        return sent
