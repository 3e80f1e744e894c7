"""The webhook outbox's names, models and bookkeeping, with no Temporal import.

A run emits events; its outbox (`WebhookOutboxWorkflow` in `workflows.shared.outbox`) delivers
them one at a time, in the order they were emitted, each retried until its delivery window has
passed, and outlives the run. `OutboxState` is the outbox's memory: which events wait, which
were delivered, which failed and why. The outbox workflow, the gateway (status, redelivery)
and the unit tests all use it, so each question (what comes next? what is shown?) has one
answer.

Delivered events keep a compact record (no body), and only the newest `KEEP_DELIVERED` of
them; events still to deliver or failed keep their body (to send or redeliver it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final, Literal

from pydantic import BaseModel, Field

#: The outbox workflow's type and its handlers' names, as engines and the gateway use them.
WEBHOOK_OUTBOX_WORKFLOW: Final = "WebhookOutboxWorkflow"
ENQUEUE_SIGNAL: Final = "enqueue"
REDELIVER_UPDATE: Final = "redeliver"
GET_STATUS_QUERY: Final = "get_status"

#: Delivered events whose record is kept (for the status); older ones are only counted.
KEEP_DELIVERED = 1000
#: Events a status lists at most: every one while a run has no more, else those still to
#: deliver or failed first.
STATUS_EVENTS = 1000

EventState = Literal["pending", "delivered", "failed"]


def outbox_workflow_id(workflow_id: str, first_run_id: str) -> str:
    """One outbox per run: the run's workflow id (ids are reused by later runs) and the first
    run id of its chain (the same after continue-as-new)."""
    return f"{workflow_id}/webhooks/{first_run_id}"


class WebhookEventState(BaseModel):
    """One event as a run's status shows it."""

    event_id: str
    sequence: int = 0
    event: str = ""
    step_name: str | None = None
    state: EventState = "pending"
    #: Attempts so far, over every delivery (the first and each redelivery).
    attempts: int = 0
    #: The receiver's status: of the delivery, or of the last failed attempt.
    http_status: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    #: While the event is being retried: when the next attempt starts.
    next_attempt_at: datetime | None = None
    redeliveries: int = 0


class WebhookDeliveries(BaseModel):
    """How a run's webhook events fare: counts, the last error and each event's state.

    `undelivered` counts what has not been delivered (yet): `pending` + `failed`.
    """

    delivered: int = 0
    undelivered: int = 0
    last_error: str | None = None
    pending: int = 0
    failed: int = 0
    #: The run's outbox workflow, when the run has webhooks (None for runs recorded before
    #: outboxes, whose events were sent by the run itself).
    outbox_id: str | None = None
    events: list[WebhookEventState] = Field(default_factory=list)
    #: Events not listed in `events` (delivered ones first), counted above all the same.
    events_omitted: int = 0


class OutboxEvent(WebhookEventState):
    """An event in the outbox: its record, when it (last) entered the queue, and its body
    until it is delivered."""

    enqueued_at: datetime
    payload: dict[str, Any] | None = None


class EventBatch(BaseModel):
    """Events signalled to the outbox, in order; `final`: the run has ended, no more follow."""

    events: list[dict[str, Any]] = Field(default_factory=list)
    final: bool = False


class Redelivery(BaseModel):
    """Events to deliver again; None: every failed event."""

    event_ids: list[str] | None = None


class RedeliveryResult(BaseModel):
    redelivering: list[str] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)
    #: Events that cannot be redelivered, with their state (pending, delivered).
    not_failed: dict[str, EventState] = Field(default_factory=dict)


class DeliveryPolicy(BaseModel):
    """How each event is tried: attempts bounded, retried with backoff (1 s doubling, at most
    `retry_max_interval_seconds` apart) until `window_seconds` after it was queued."""

    attempt_timeout_seconds: float = 10.0
    window_seconds: float = 6 * 3600
    retry_max_interval_seconds: float = 300.0

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_seconds)

    def delivery_budget(self, event: OutboxEvent, now: datetime) -> tuple[timedelta, bool]:
        """What is left of the event's window, and whether it is a last chance: with less
        than one attempt's time left (its window passed while earlier events were tried),
        the event still gets one whole attempt, and only one."""
        attempt = timedelta(seconds=self.attempt_timeout_seconds)
        left = event.enqueued_at + self.window - now
        return (left, False) if left > attempt else (attempt, True)


class OutboxState(BaseModel):
    """The outbox's memory, carried across continue-as-new and in its result."""

    #: Every event still remembered, in the order received (the run's order).
    events: dict[str, OutboxEvent] = Field(default_factory=dict)
    #: Events to deliver, in delivery order: the run's order, redeliveries after.
    queue: list[str] = Field(default_factory=list)
    #: The run has ended: once every event is settled the outbox closes.
    closed: bool = False
    #: The sequence number the run's next event has, and events that came before their turn.
    next_sequence: int = 1
    held: dict[int, dict[str, Any]] = Field(default_factory=dict)
    #: Delivered events whose record is kept, oldest first; older ones are only counted
    #: in `forgotten_delivered` (`KEEP_DELIVERED`).
    delivered_ids: list[str] = Field(default_factory=list)
    forgotten_delivered: int = 0
    last_error: str | None = None

    def enqueue(self, events: list[dict[str, Any]], now: datetime) -> int:
        """Queue new events in the run's order, by `sequence` (1, 2, 3… per run): an event
        that arrives before an earlier one (signals may overtake each other) is held until
        that one has come. Events already seen are ignored. How many were new."""
        added = 0
        for payload in events:
            event_id = str(payload.get("event_id", ""))
            sequence = int(payload.get("sequence") or 0)
            if not event_id or event_id in self.events:
                continue
            if sequence and (sequence < self.next_sequence or sequence in self.held):
                continue
            added += 1
            if sequence > self.next_sequence:
                self.held[sequence] = payload
                continue
            self._queue(payload, now)
            if sequence:
                self.next_sequence = sequence + 1
            while self.next_sequence in self.held:
                self._queue(self.held.pop(self.next_sequence), now)
                self.next_sequence += 1
        return added

    def flush_held(self, now: datetime) -> None:
        """Queue the held events, gaps or not (the run that would fill them is over)."""
        for sequence in sorted(self.held):
            self._queue(self.held.pop(sequence), now)
            self.next_sequence = sequence + 1

    @property
    def finished(self) -> bool:
        """The run has ended and every event it sent is settled (delivered or failed)."""
        return self.closed and not self.queue and not self.held

    def _queue(self, payload: dict[str, Any], now: datetime) -> None:
        event_id = str(payload["event_id"])
        step = payload.get("step_name")
        self.events[event_id] = OutboxEvent(
            event_id=event_id,
            sequence=int(payload.get("sequence") or 0),
            event=str(payload.get("event", "")),
            step_name=str(step) if step is not None else None,
            enqueued_at=now,
            payload=payload,
        )
        self.queue.append(event_id)

    def next_event(self) -> OutboxEvent | None:
        """The event to deliver now, or None when none waits."""
        return self.events[self.queue[0]] if self.queue else None

    def delivered(self, event_id: str, status: int, attempts: int, now: datetime) -> None:
        event = self._settle(event_id)
        event.state = "delivered"
        event.http_status = status
        event.attempts += attempts
        event.delivered_at = now
        event.payload = None
        self.delivered_ids.append(event_id)
        self._forget_old_deliveries()

    def failed(self, event_id: str, error: str, attempts: int, status: int | None) -> None:
        event = self._settle(event_id)
        event.state = "failed"
        event.attempts += attempts
        event.http_status = status
        event.last_error = error
        self.last_error = error

    def redeliver(self, event_ids: list[str] | None, now: datetime) -> RedeliveryResult:
        """Queue failed events again, with a new window, after those already queued."""
        result = RedeliveryResult()
        if event_ids is None:
            event_ids = [e.event_id for e in self.events.values() if e.state == "failed"]
        for event_id in dict.fromkeys(event_ids):
            event = self.events.get(event_id)
            if event is None:
                result.unknown.append(event_id)
            elif event.state != "failed":
                result.not_failed[event_id] = event.state
            else:
                event.state = "pending"
                event.enqueued_at = now
                event.redeliveries += 1
                self.queue.append(event_id)
                result.redelivering.append(event_id)
        return result

    def summary(self, limit: int = STATUS_EVENTS) -> WebhookDeliveries:
        """Counts, the last error and the events a status lists (at most `limit`)."""
        counts = {"pending": len(self.held), "delivered": self.forgotten_delivered, "failed": 0}
        for event in self.events.values():
            counts[event.state] += 1
        listed = list(self.events.values())
        if len(listed) > limit:
            undelivered = [e for e in listed if e.state != "delivered"]
            room = max(0, limit - len(undelivered))
            delivered = [e for e in listed if e.state == "delivered"][-room:] if room else []
            keep = {e.event_id for e in undelivered[:limit]} | {e.event_id for e in delivered}
            listed = [e for e in listed if e.event_id in keep]
        return WebhookDeliveries(
            delivered=counts["delivered"],
            pending=counts["pending"],
            failed=counts["failed"],
            undelivered=counts["pending"] + counts["failed"],
            last_error=self.last_error,
            events=[
                WebhookEventState(**e.model_dump(exclude={"enqueued_at", "payload"}))
                for e in listed
            ],
            events_omitted=counts["delivered"] + counts["pending"] + counts["failed"] - len(listed),
        )

    def _settle(self, event_id: str) -> OutboxEvent:
        """Take the event off the queue, where it must be first."""
        if not self.queue or self.queue[0] != event_id:
            raise ValueError(f"event {event_id!r} is not the next to deliver")
        self.queue.pop(0)
        return self.events[event_id]

    def _forget_old_deliveries(self) -> None:
        while len(self.delivered_ids) > KEEP_DELIVERED:
            del self.events[self.delivered_ids.pop(0)]
            self.forgotten_delivered += 1


class OutboxInput(BaseModel):
    """What an outbox starts with, and carries across continue-as-new (and returns)."""

    url: str
    #: The run it delivers for.
    workflow_id: str
    namespace: str = "default"
    #: Whose run it delivers for (None: the open gateway's): its events name it and are
    #: signed with its own secret when it has one (`activities.http.signing`).
    tenant: str | None = None
    policy: DeliveryPolicy = Field(default_factory=DeliveryPolicy)
    #: After this the run has surely ended (Temporal's execution timeout): an outbox that
    #: never heard the run's last event closes once idle past it. None: after `MAX_IDLE`.
    run_deadline: datetime | None = None
    #: Continue as new after this many deliveries, even if the server has not suggested it.
    deliveries_per_run: int | None = None
    state: OutboxState = Field(default_factory=OutboxState)


#: An outbox whose run gave no deadline closes after this long with nothing to deliver and
#: no word from the run.
MAX_IDLE = timedelta(days=7)
