"""The wait of an approval step, one for both engines: a DAG `approval` step and an
`approval` instruction wait the same way and come out of it the same way.

The step waits until the `approve` update has put a decision in the run's `decisions`
(`approvals.approval_result`), or until its time runs out and `on_timeout` decides
(`timed_out_decision`); the run's deadline is held meanwhile (`deadline.HeldDeadline`), so a
person's time does not count against it. `decision_outcome` turns the decision into the
step's result, or its failure.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

from kernel.errors import ErrorType
from workflows.shared.approvals import ApprovalStep
from workflows.shared.deadline import HeldDeadline
from workflows.shared.failures import StepFailed


def waiting_data(message: str, seconds: float, approval: ApprovalStep) -> dict[str, Any]:
    """The `step.waiting` event's data: what a person is asked and by when."""
    return {
        "message": message,
        "timeout_seconds": seconds,
        "on_timeout": approval.on_timeout,
        "schema": approval.schema_,
    }


def timed_out_decision(approval: ApprovalStep, at: str) -> dict[str, Any]:
    """What an approval step's timeout decides (`on_timeout`), as a person's decision."""
    decision = "reject" if approval.on_timeout == "reject" else "approve"
    return {"decision": decision, "comment": "timed out", "data": None, "by": "timeout", "at": at}


async def await_decision(
    decisions: dict[str, dict[str, Any]],
    name: str,
    approval: ApprovalStep,
    seconds: float,
    deadline: HeldDeadline | None,
    *,
    summary: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Wait for the decision on step `name` (the `approve` update records it in
    `decisions`) or for `seconds` to pass; the timeout's decision is recorded there too.

    Returns:
        The decision, and whether the timeout took it.
    """
    if deadline is not None:
        deadline.hold()
    timed_out = False
    try:
        await workflow.wait_condition(
            lambda: name in decisions,
            timeout=timedelta(seconds=seconds),
            timeout_summary=summary or f"approval {name}",
        )
    except TimeoutError:
        timed_out = True
        decisions[name] = timed_out_decision(approval, workflow.now().isoformat())
    finally:
        if deadline is not None:
            deadline.release()
    return decisions[name], timed_out


def decision_outcome(
    approval: ApprovalStep, decision: dict[str, Any], *, timed_out: bool, label: str
) -> dict[str, Any]:
    """An approval step's result once decided: the decision, if it approves.

    Raises:
        StepFailed: rejected (`Rejected`), or timed out with `on_timeout: fail`.
    """
    if timed_out and approval.on_timeout == "fail":
        raise StepFailed.of(ErrorType.APPROVAL_TIMED_OUT, f"{label}: nobody decided in time")
    if decision["decision"] == "reject":
        why = f": {decision['comment']}" if decision.get("comment") else ""
        raise StepFailed.of(ErrorType.REJECTED, f"{label}: rejected by {decision['by']}{why}")
    return decision
