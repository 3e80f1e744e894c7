"""`WebhookOutboxWorkflow` on its own: continue-as-new, and closing when its run never said
it ended."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import WorkflowExecutionStatus

from tests.conftest import Engine, Targets, unique
from workflows.shared.outbox import WebhookOutboxWorkflow
from workflows.shared.webhooks import EventBatch, OutboxInput, OutboxState


def events(run: str, count: int) -> list[dict[str, object]]:
    return [
        {"event": "step.completed", "event_id": f"{run}:{n}", "sequence": n}
        for n in range(1, count + 1)
    ]


async def test_the_outbox_continues_as_new_and_keeps_order_and_state(
    dev_engine: Engine, targets: Targets
):
    hook, run = unique("hook"), unique("run")
    state = OutboxState()
    state.enqueue(events(run, 3), datetime.now(UTC))
    outbox = OutboxInput(
        url=f"{targets.url}/hooks/{hook}",
        workflow_id=run,
        deliveries_per_run=2,
        state=state,
    )
    handle = await dev_engine.client.start_workflow(
        WebhookOutboxWorkflow.run,
        outbox,
        id=f"{run}/webhooks/x",
        task_queue=dev_engine.settings.task_queue,
    )
    first_run = handle.result_run_id
    await handle.signal(WebhookOutboxWorkflow.enqueue, EventBatch(events=events(run, 5)[3:]))
    await handle.signal(WebhookOutboxWorkflow.enqueue, EventBatch(final=True))
    final = await handle.result()
    assert [e["sequence"] for e in targets.state.hooks[hook]] == [1, 2, 3, 4, 5]
    summary = final.state.summary()
    assert (summary.delivered, summary.undelivered) == (5, 0)
    assert [e.event_id for e in summary.events] == [f"{run}:{n}" for n in range(1, 6)]
    first = await dev_engine.client.get_workflow_handle(handle.id, run_id=first_run).describe()
    assert first.status == WorkflowExecutionStatus.CONTINUED_AS_NEW


async def test_an_outbox_whose_run_never_ended_closes_after_the_runs_deadline(
    engine: Engine, targets: Targets
):
    run = unique("run")
    handle = await engine.client.start_workflow(
        WebhookOutboxWorkflow.run,
        OutboxInput(
            url=f"{targets.url}/hooks/{unique('hook')}",
            workflow_id=run,
            run_deadline=datetime.now(UTC),
        ),
        id=f"{run}/webhooks/x",
        task_queue=engine.settings.task_queue,
    )
    # Event 2 came, event 1 never will: once the run is surely over, 2 is delivered anyway.
    await handle.signal(WebhookOutboxWorkflow.enqueue, EventBatch(events=events(run, 2)[1:]))
    final = await handle.result()  # time skips past the deadline
    assert final.state.closed and final.state.finished
    assert [e.sequence for e in final.state.summary().events] == [2]
