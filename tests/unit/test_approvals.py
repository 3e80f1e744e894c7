"""Approval steps' pure parts: the payload, its validation, and what the update refuses."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kernel.errors import ErrorType
from workflows.dag.graph import validate_pipeline
from workflows.dag.models import DagRunInput
from workflows.shared.approvals import ApprovalStep, refusal, wait_seconds

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def problems_of(step: dict[str, Any]) -> list[str]:
    run = DagRunInput.model_validate(
        {"workflow_id": "w", "STEPS_CONFIG": [{"step_name": "s", "usid": "u", **step}]}
    )
    return [problem.msg for problem in validate_pipeline(run)]


def test_an_approval_step_needs_its_approval_and_a_real_schema() -> None:
    assert problems_of({"type": "approval", "approval": {"message": "ok?"}}) == []
    assert problems_of({"type": "approval"}) == [
        "step 's': approval is required for an approval step"
    ]
    [bad] = problems_of(
        {"type": "approval", "approval": {"message": "ok?", "schema": {"type": "nope"}}}
    )
    assert "schema is no JSON Schema" in bad
    [foreign] = problems_of(
        {"type": "approval", "approval": {"message": "ok?"}, "service_url": "http://x"}
    )
    assert "service_url is for http steps" in foreign


def test_an_approval_message_may_not_show_a_secret_or_name_nothing() -> None:
    [secret] = problems_of(
        {"type": "approval", "approval": {"message": "key {{secrets.API_KEY}}?"}}
    )
    assert "never shown to a person" in secret
    [unknown] = problems_of({"type": "approval", "approval": {"message": "{{nothing}}?"}})
    assert "nothing" in unknown


def test_the_approval_payload_is_strict_and_keeps_its_schema_key() -> None:
    with pytest.raises(ValidationError, match="on_timout"):
        ApprovalStep.model_validate({"message": "ok?", "on_timout": "approve"})
    step = ApprovalStep.model_validate({"message": "ok?", "schema": SCHEMA})
    assert step.model_dump()["schema"] == SCHEMA
    assert ApprovalStep.model_validate(step.model_dump()) == step


def test_the_wait_is_the_step_timeout_within_wait_timeout() -> None:
    assert wait_seconds(ApprovalStep(message="m", timeout=30), 100) == 30
    assert wait_seconds(ApprovalStep(message="m", timeout=300), 100) == 100
    assert wait_seconds(ApprovalStep(message="m"), 100) == 100


def test_an_approval_lands_only_on_a_waiting_step_with_data_that_fits() -> None:
    step = ApprovalStep.model_validate({"message": "m", "schema": SCHEMA})
    assert refusal(step, "waiting", False, {"n": 1}) is None
    assert refusal(None, None, False, None) == (ErrorType.NOT_WAITING, "no such approval step")
    for status, decided in (("running", False), ("completed", False), ("waiting", True)):
        refused = refusal(step, status, decided, {"n": 1})
        assert refused is not None and refused[0] == ErrorType.NOT_WAITING
    broken = refusal(step, "waiting", False, {"n": "one"})
    assert broken is not None
    assert broken[0] == ErrorType.INVALID_APPROVAL_DATA
    assert "data/n" in broken[1]
