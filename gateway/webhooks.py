"""Redelivering a run's failed webhook events.

While the run's outbox (`WebhookOutboxWorkflow`) runs, its `redeliver` update queues them
again; once it has closed, it is started again with the state it closed with, those events
queued. Either way each gets a new delivery window and keeps its `event_id`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from gateway.runs.service import RunStatusService
from workflows.shared.outbox import WebhookOutboxWorkflow
from workflows.shared.webhooks import Redelivery, RedeliveryResult

#: The outbox may close, or be started again by another redelivery, between look and act.
ATTEMPTS = 3


class OutboxUnavailable(Exception):
    """The outbox cannot take a redelivery: not started, or terminated, cancelled, failed."""


async def redeliver(
    runs: RunStatusService, outbox_id: str, event_ids: list[str] | None
) -> RedeliveryResult:
    """Queue failed events again: all of them (`event_ids` None) or those named.

    Raises:
        OutboxUnavailable: why the outbox cannot take it.
    """
    handle = runs.outboxes.handle(outbox_id)
    for _ in range(ATTEMPTS):
        description = await runs.outboxes.describe(outbox_id)
        if description is None:
            raise OutboxUnavailable("the run's webhook outbox has not started yet")
        if description.status == WorkflowExecutionStatus.RUNNING:
            try:
                return await handle.execute_update(
                    WebhookOutboxWorkflow.redeliver, Redelivery(event_ids=event_ids)
                )
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                continue  # it closed meanwhile
        if description.status != WorkflowExecutionStatus.COMPLETED:
            state = description.status.name.lower() if description.status else "closed"
            raise OutboxUnavailable(f"the run's webhook outbox was {state}")
        outbox = await handle.result()
        result = outbox.state.redeliver(event_ids, datetime.now(UTC))
        if not result.redelivering:
            return result
        try:
            await runs.client.start_workflow(
                WebhookOutboxWorkflow.run,
                outbox,
                id=outbox_id,
                task_queue=description.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=description.typed_search_attributes,
                static_summary=f"webhooks of {outbox.namespace}/{outbox.workflow_id} (redelivery)",
            )
        except WorkflowAlreadyStartedError:
            continue  # another redelivery started it first: ask the running one
        return result
    raise OutboxUnavailable("the run's webhook outbox kept changing state; try again")
