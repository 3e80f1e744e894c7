"""Approval steps whose wait runs out, in the time-skipping environment: `on_timeout` decides,
and the run's deadline does not count the wait."""

from __future__ import annotations

from typing import Any

from tests.conftest import Engine, Targets, unique
from tests.workflows.test_dag_workflow import pipeline, run, run_failing


def gated(targets: Targets, key: str, **approval: Any) -> list[dict[str, Any]]:
    return [
        {
            "step_name": "review",
            "usid": "u-review",
            "type": "approval",
            "approval": {"message": "Go on with {{topic}}?", **approval},
        },
        {
            "step_name": "after",
            "usid": "u-after",
            "service_url": f"{targets.url}/echo/{key}",
            "dependencies": ["review"],
            "input_prep_config": {"body": {"by": "{{review_result.by}}"}},
        },
    ]


async def test_a_timeout_that_approves_goes_on_past_the_run_deadline(
    engine: Engine, targets: Targets
) -> None:
    key = unique("timeout-approve")
    # An hour's wait in a run whose deadline is a minute: only the time not waited counts.
    result = await run(
        engine,
        pipeline(
            gated(targets, key, timeout=3600, on_timeout="approve"),
            timeouts={"run_timeout": 60},
        ),
    )
    assert result.status == "completed"
    review = result.steps["review"].result
    assert review["decision"] == "approve"
    assert review["by"] == "timeout"
    assert result.steps["after"].result["json"] == {"by": "timeout"}
    assert targets.state.calls[key] == 1


async def test_a_timeout_that_rejects_aborts_the_dependents(
    engine: Engine, targets: Targets
) -> None:
    key = unique("timeout-reject")
    result = await run_failing(
        engine, pipeline(gated(targets, key, timeout=30, on_timeout="reject"))
    )
    assert result.steps["review"].status == "failed"
    assert result.steps["review"].error is not None
    assert result.steps["review"].error.type == "Rejected"
    assert result.steps["after"].status in ("aborted", "cancelled")
    assert targets.state.calls[key] == 0


async def test_a_timeout_that_fails_is_bounded_by_wait_timeout(
    engine: Engine, targets: Targets
) -> None:
    key = unique("timeout-fail")
    # No timeout of its own: the pipeline's wait_timeout bounds the wait.
    result = await run_failing(
        engine, pipeline(gated(targets, key), timeouts={"wait_timeout": 120, "run_timeout": 30})
    )
    error = result.steps["review"].error
    assert error is not None
    assert error.type == "ApprovalTimedOut"
    assert result.error is not None
    assert result.error.type == "ApprovalTimedOut"
