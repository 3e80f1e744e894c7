"""Approval instructions in the time-skipping environment with the real activities: the run
waits for the `approve` update, the decision is the next step's input, a rejection fails the
run with `Rejected`, the timeout applies `on_timeout`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.conftest import Engine, Targets, unique, wait_until
from tests.workflows.test_instruction_workflow import payload, start
from workflows.instructions.models import InstructionRunStatus
from workflows.instructions.workflow import InstructionWorkflow
from workflows.shared.approvals import Approval
from workflows.shared.events import EventsQuery


def review_then_post(targets: Targets, key: str, **approval: Any) -> list[Any]:
    """Fetch, wait for a person, post what they decided."""
    return [
        {"type": "endpoint", "apiUrl": f"{targets.url}/record/{key}-fetch"},
        {"type": "approval", "message": "Post {{result}} for {{context}}?", **approval},
        {
            "type": "endpoint",
            "apiUrl": f"{targets.url}/echo/{key}",
            "method": "POST",
            "body": {"decided": "{{result}}"},
        },
    ]


async def waiting(handle: WorkflowHandle[Any, Any], index: int) -> InstructionRunStatus:
    async def reached() -> InstructionRunStatus | None:
        status = await handle.query(InstructionWorkflow.get_status)
        return status if status.steps[index].status == "waiting" else None

    found: InstructionRunStatus = await wait_until(reached)
    return found


async def test_an_approval_waits_and_its_decision_is_the_next_steps_input(
    llm_engine: Engine, targets: Targets
):
    key = unique("approve")
    schema = {"type": "object", "required": ["channel"]}
    handle = await start(llm_engine, payload(review_then_post(targets, key, schema=schema)))
    await waiting(handle, 1)
    page = await handle.query(InstructionWorkflow.get_events, EventsQuery())
    [event] = [e for e in page.events if e["event"] == "step.waiting"]
    assert event["step_name"] == "1"
    assert event["data"]["message"] == 'Post {"ok": true, "calls": 1} for CONTEXT-TEXT?'
    assert targets.state.calls[key] == 0

    with pytest.raises(WorkflowUpdateFailedError) as broken:
        await handle.execute_update(
            InstructionWorkflow.approve, Approval(step_name="1", data={"when": "now"})
        )
    assert isinstance(broken.value.cause, ApplicationError)
    assert broken.value.cause.type == "InvalidApprovalData"
    for name in ("0", "last", "-1", "9"):
        with pytest.raises(WorkflowUpdateFailedError) as not_approval:
            await handle.execute_update(InstructionWorkflow.approve, Approval(step_name=name))
        assert isinstance(not_approval.value.cause, ApplicationError)
        assert not_approval.value.cause.type == "NotWaiting"

    decided = await handle.execute_update(
        InstructionWorkflow.approve,
        Approval(step_name="1", data={"channel": "news"}, comment="fine", by="acme"),
    )
    assert (decided["decision"], decided["by"], decided["data"]) == (
        "approve",
        "acme",
        {"channel": "news"},
    )
    status = await handle.result()
    assert status.status == "complete"
    assert status.execution_order == [0, 1, 2]
    assert json.loads(status.steps[1].result or "") == decided
    sent = targets.state.requests[key][-1]["json"]
    assert json.loads(sent["decided"]) == decided

    with pytest.raises(Exception, match="update|completed|not found"):
        await handle.execute_update(InstructionWorkflow.approve, Approval(step_name="1"))


async def test_a_rejection_fails_the_run_with_rejected(llm_engine: Engine, targets: Targets):
    key = unique("reject")
    handle = await start(llm_engine, payload(review_then_post(targets, key)))
    await waiting(handle, 1)
    await handle.execute_update(
        InstructionWorkflow.approve,
        Approval(step_name="1", decision="reject", comment="not today"),
    )
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    status = InstructionRunStatus.model_validate(cause.details[0])
    assert status.error is not None and status.error.type == "Rejected"
    assert status.error.step == 1 and "not today" in status.error.message
    assert status.steps[2].status == "skipped"
    assert targets.state.calls[key] == 0


@pytest.mark.parametrize(("on_timeout", "outcome"), [("approve", "complete"), ("fail", None)])
async def test_the_timeout_applies_on_timeout_and_the_deadline_does_not_count_the_wait(
    llm_engine: Engine, targets: Targets, on_timeout: str, outcome: str | None
):
    key = unique("timeout")
    # A 6 s wait in a run whose own deadline is 3 s: the wait is not counted. Real seconds:
    # the shared test server skips time only when no other test's work is under way.
    run = payload(review_then_post(targets, key, timeout=6, on_timeout=on_timeout))
    run.engine.run_timeout_seconds = 3
    handle = await start(llm_engine, run)
    if outcome is None:
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        assert isinstance(info.value.cause, ApplicationError)
        status = InstructionRunStatus.model_validate(info.value.cause.details[0])
        assert status.error is not None and status.error.type == "ApprovalTimedOut"
        assert targets.state.calls[key] == 0
        return
    status = await handle.result()
    assert status.status == outcome
    assert json.loads(status.steps[1].result or "")["by"] == "timeout"
    assert targets.state.calls[key] == 1
