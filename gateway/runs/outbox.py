"""A DAG run's webhook events as its outbox (`WebhookOutboxWorkflow`) knows them.

The outbox delivers after the run has ended: its state is read live from its query while it
delivers (with the attempt and last failure of the event being retried, which only Temporal
knows), and from its result once it has closed.
"""

from __future__ import annotations

from datetime import UTC

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from gateway.runs.engine import FIRST_TASK_DONE_EVENTS, STATUS_QUERY_TIMEOUT
from gateway.runs.failures import decode_pending_failures
from workflows.dag.models import DagRunResult
from workflows.shared.outbox import WebhookOutboxWorkflow
from workflows.shared.webhooks import OutboxInput, WebhookDeliveries


def add_live_attempt(summary: WebhookDeliveries, description: WorkflowExecutionDescription) -> None:
    """Show the event being retried with its current attempt, last failure and next attempt,
    which only Temporal knows until its delivery ends (activity id `<event_id>#<n>`)."""
    for pending in description.raw_description.pending_activities:
        event_id = pending.activity_id.rpartition("#")[0]
        event = next((e for e in summary.events if e.event_id == event_id), None)
        if event is None:
            continue
        event.attempts += pending.attempt
        if pending.HasField("last_failure"):
            event.last_error = pending.last_failure.message
            summary.last_error = event.last_error
        if pending.HasField("next_attempt_schedule_time"):
            event.next_attempt_at = pending.next_attempt_schedule_time.ToDatetime(tzinfo=UTC)


class OutboxReads:
    """Runs' webhook outboxes, read through the gateway's Temporal client.

    Outbox ids are Temporal workflow ids, as a run's status carries them (tenant included).
    """

    def __init__(self, client: Client) -> None:
        self.client = client

    def handle(self, outbox_id: str) -> WorkflowHandle[WebhookOutboxWorkflow, OutboxInput]:
        return self.client.get_workflow_handle_for(WebhookOutboxWorkflow.run, outbox_id)

    async def describe(self, outbox_id: str) -> WorkflowExecutionDescription | None:
        """The outbox's description; None when it has not started."""
        try:
            return await self.handle(outbox_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    async def deliveries(self, outbox_id: str) -> WebhookDeliveries | None:
        """An outbox's counts and per-event state; None while it cannot say (not started or
        picked up yet, no worker answering, closed other than by finishing)."""
        description = await self.describe(outbox_id)
        if description is None:
            return None
        handle = self.handle(outbox_id)
        if description.status == WorkflowExecutionStatus.COMPLETED:
            try:
                return (await handle.result()).state.summary()
            except WorkflowFailureError:
                return None
        if (
            description.status != WorkflowExecutionStatus.RUNNING
            or description.history_length < FIRST_TASK_DONE_EVENTS
        ):
            return None
        try:
            summary = await handle.query(
                WebhookOutboxWorkflow.get_status, rpc_timeout=STATUS_QUERY_TIMEOUT
            )
        except (RPCError, WorkflowQueryFailedError):
            return None
        await decode_pending_failures(self.client.data_converter, description)
        add_live_attempt(summary, description)
        return summary

    async def with_webhooks(self, run: DagRunResult) -> DagRunResult:
        """`run` with its webhook events' state as its outbox knows it (unchanged for a run
        without webhooks, or whose outbox cannot say yet)."""
        recorded = run.webhooks
        if recorded.outbox_id is None:
            return run
        outbox = await self.deliveries(recorded.outbox_id)
        if outbox is not None:
            merged = outbox.model_copy(update={"outbox_id": recorded.outbox_id})
            # What the run itself could not hand over to the outbox, if anything.
            merged.undelivered += recorded.undelivered
            merged.last_error = outbox.last_error or recorded.last_error
            run.webhooks = merged
        return run
