"""`WebhookOutboxWorkflow`: a run's webhook events, delivered durably, off the run's path.

One outbox per run (`outbox_workflow_id`), started by the run as a child workflow that the run
abandons when it closes, so delivery outlives it: the run signals its events and ends as soon
as the last one is handed over, whatever the receiver does. The outbox:

- delivers one event at a time, in the order the run emitted them (redeliveries after);
- retries each with backoff (1 s doubling, at most `retry_max_interval_seconds` apart) until
  its delivery window has passed since it was queued, then marks it failed and goes on with
  the next, which gets at least one attempt;
- answers `get_status` (counts and each event's state) and the `redeliver` update;
- continues as new when the server suggests it, carrying `OutboxState`;
- closes once the run's last event is settled, returning its state; the gateway starts it
  again (with that state) to redeliver failed events.

The sending side is `forward_to_outbox`, which a run's workflow drives from a background task.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    RetryState,
    WorkflowAlreadyStartedError,
)
from temporalio.exceptions import (
    TimeoutError as TemporalTimeoutError,
)

with workflow.unsafe.imports_passed_through():
    from activities.http.models import SEND_WEBHOOK, WebhookDelivery, WebhookReceipt
    from kernel import errors
    from kernel.metrics import count_webhook_delivery, count_webhook_events_queued
    from kernel.search import ENGINE
    from workflows.shared.webhooks import (
        ENQUEUE_SIGNAL,
        GET_STATUS_QUERY,
        MAX_IDLE,
        REDELIVER_UPDATE,
        WEBHOOK_OUTBOX_WORKFLOW,
        EventBatch,
        OutboxEvent,
        OutboxInput,
        Redelivery,
        RedeliveryResult,
        WebhookDeliveries,
    )

#: Events per signal at most, and about how many bytes of JSON: one signal stays well under
#: Temporal's payload limit however large each event is.
BATCH_EVENTS = 100
BATCH_BYTES = 256 * 1024


@workflow.defn(name=WEBHOOK_OUTBOX_WORKFLOW)
class WebhookOutboxWorkflow:
    @workflow.init
    def __init__(self, outbox: OutboxInput) -> None:
        self._outbox = outbox
        self._state = outbox.state
        self._deliveries = 0

    @workflow.signal(name=ENQUEUE_SIGNAL)
    def enqueue(self, batch: EventBatch) -> None:
        """Events from the run, in its order; `final` once the run has ended."""
        count_webhook_events_queued(self._state.enqueue(batch.events, workflow.now()))
        if batch.final:
            self._state.closed = True

    @workflow.update(name=REDELIVER_UPDATE)
    def redeliver(self, request: Redelivery) -> RedeliveryResult:
        """Queue failed events again (all of them, or those named), each with a new window."""
        result = self._state.redeliver(request.event_ids, workflow.now())
        count_webhook_events_queued(len(result.redelivering))
        return result

    @workflow.query(name=GET_STATUS_QUERY)
    def get_status(self) -> WebhookDeliveries:
        """Counts, the last error and each event's state."""
        return self._state.summary()

    @workflow.run
    async def run(self, outbox: OutboxInput) -> OutboxInput:
        state = self._state
        while True:
            if state.finished:
                return self._outbox
            event = state.next_event()
            if event is None:
                await self._wait_for_events()
                continue
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._outbox)
            await self._deliver(event)

    async def _wait_for_events(self) -> None:
        """Until an event is queued or the run ends; a run that ended without saying so
        (terminated, timed out) closes the outbox once it is surely over."""
        state = self._state
        deadline = self._outbox.run_deadline
        idle = MAX_IDLE if deadline is None else max(deadline - workflow.now(), timedelta(0))
        try:
            await workflow.wait_condition(
                lambda: bool(state.queue) or state.finished,
                timeout=idle + timedelta(minutes=1),
                timeout_summary="the run's end",
            )
        except TimeoutError:
            workflow.logger.warning("outbox closing: its run ended without a last event")
            state.flush_held(workflow.now())
            state.closed = True

    def _should_continue_as_new(self) -> bool:
        limit = self._outbox.deliveries_per_run
        return workflow.info().is_continue_as_new_suggested() or (
            limit is not None and self._deliveries >= limit
        )

    async def _deliver(self, event: OutboxEvent) -> None:
        policy = self._outbox.policy
        self._deliveries += 1
        budget, last_chance = policy.delivery_budget(event, workflow.now())
        try:
            receipt = await workflow.execute_activity(
                SEND_WEBHOOK,
                WebhookDelivery(
                    url=self._outbox.url, event=event.payload or {}, tenant=self._outbox.tenant
                ),
                result_type=WebhookReceipt,
                # One per delivery of the event, so the gateway can match Temporal's
                # pending-activity view (attempt, last failure) to it.
                activity_id=f"{event.event_id}#{event.redeliveries}",
                start_to_close_timeout=timedelta(seconds=policy.attempt_timeout_seconds),
                schedule_to_close_timeout=budget,
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=policy.retry_max_interval_seconds),
                    maximum_attempts=1 if last_chance else 0,
                    non_retryable_error_types=errors.NON_RETRYABLE_TYPES,
                ),
                summary=f"webhook #{event.sequence} {event.event}",
            )
        except ActivityError as exc:
            message, attempts, status = delivery_failure(exc, policy.window_seconds)
            workflow.logger.warning("webhook %s not delivered: %s", event.event_id, message)
            self._state.failed(event.event_id, message, attempts, status)
            count_webhook_delivery("failed")
            return
        self._state.delivered(event.event_id, receipt.status, receipt.attempt, workflow.now())
        count_webhook_delivery("delivered")


def delivery_failure(exc: ActivityError, window_seconds: float) -> tuple[str, int, int | None]:
    """(message, attempts, HTTP status) of a delivery that failed for good: a non-retryable
    answer (another 4xx, a refused destination), or retries until the window closed."""
    last: BaseException | None = exc.cause
    # Past the window Temporal gives up with the last attempt's failure, or a timeout.
    timed_out = isinstance(last, TemporalTimeoutError) or exc.retry_state in (
        RetryState.TIMEOUT,
        RetryState.MAXIMUM_ATTEMPTS_REACHED,
    )
    while isinstance(last, FailureError) and not isinstance(last, ApplicationError):
        last = last.cause
    details: dict[str, Any] = {}
    if isinstance(last, ApplicationError) and last.details and isinstance(last.details[0], dict):
        details = last.details[0]
    message = last.message if isinstance(last, FailureError) else str(last or exc)
    if timed_out:
        message = f"not delivered within its {window_seconds:g}s window; last error: {message}"
    status = details.get("status")
    return (
        message[:1000],
        int(details.get("attempt") or 1),
        status if isinstance(status, int) else None,
    )


async def forward_to_outbox(
    outbox: OutboxInput,
    outbox_id: str,
    pending: list[dict[str, Any]],
    closing: Callable[[], bool],
    deliveries: WebhookDeliveries,
) -> None:
    """Hand a run's events to its outbox until the run closes.

    Runs as a background task of the run's workflow. Starts the outbox with the events
    emitted so far (or finds it started, by an earlier run of a chain that continued as new),
    then signals what `pending` receives, in batches. Signals go out without waiting for the
    previous one to be acknowledged (the outbox puts events back in `sequence` order), so a
    signal costs the run no extra round trip; the last batch, marked final, is sent once
    `closing()` is true, and the function returns when every signal has been acknowledged:
    the run waits for the hand-over, never for delivery.
    """
    deliveries.outbox_id = outbox_id
    # Let the run's first activation finish (its first steps emit `step.started`), so those
    # events travel in the outbox's input instead of a signal of their own.
    await asyncio.sleep(0)
    started = _take_batch(pending, limit=None)
    outbox.state.enqueue(started, workflow.now())
    try:
        await workflow.start_child_workflow(
            WEBHOOK_OUTBOX_WORKFLOW,
            outbox,
            id=outbox_id,
            # The outbox outlives the run, and a cancelled run still hands over its events.
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            cancellation_type=workflow.ChildWorkflowCancellationType.ABANDON,
            search_attributes=_outbox_search_attributes(),
            static_summary=f"webhooks of {outbox.namespace}/{outbox.workflow_id}",
        )
    except WorkflowAlreadyStartedError:
        pending[:0] = started
    else:
        count_webhook_events_queued(len(started))
    handle = workflow.get_external_workflow_handle(outbox_id)

    async def hand_over(batch: list[dict[str, Any]], final: bool) -> None:
        try:
            await handle.signal(ENQUEUE_SIGNAL, EventBatch(events=batch, final=final))
        except FailureError as exc:
            # Only an outbox that gave up on its run (past the run's deadline) is gone.
            deliveries.undelivered += len(batch)
            deliveries.last_error = f"the webhook outbox is gone: {exc}"[:500]
            workflow.logger.warning("webhook events not handed over: %s", exc)

    signals: list[asyncio.Task[None]] = []
    while True:
        await workflow.wait_condition(lambda: bool(pending) or closing())
        batch = _take_batch(pending)
        final = closing() and not pending
        signals.append(asyncio.create_task(hand_over(batch, final)))
        if final:
            await asyncio.gather(*signals)
            return


def _take_batch(
    pending: list[dict[str, Any]], limit: int | None = BATCH_EVENTS
) -> list[dict[str, Any]]:
    """The first events of `pending`, removed from it: at most `limit` of them and about
    `BATCH_BYTES` of JSON (at least one)."""
    size = 0
    count = 0
    for event in pending[:limit]:
        size += len(json.dumps(event, default=str))
        if count and size > BATCH_BYTES:
            break
        count += 1
    batch = pending[:count]
    del pending[:count]
    return batch


def _outbox_search_attributes() -> TypedSearchAttributes | None:
    """The run's own search attributes (namespace, id…), with `WorkflowStationEngine` saying
    "webhooks", so `temporal workflow list` finds a run's outbox beside it."""
    own = workflow.info().typed_search_attributes.search_attributes
    if not own:
        return None
    kept = [pair for pair in own if pair.key.name != ENGINE.name]
    return TypedSearchAttributes([*kept, SearchAttributePair(ENGINE, "webhooks")])
