"""Approval steps: a step that waits for a person's decision. Pure, no Temporal.

An `approval` step renders its `message`, waits (status `waiting`, event `step.waiting`)
until someone approves or rejects it (`POST /runs/{id}/steps/{step}/approve`, a Temporal
Update whose validator is `refusal`), or until its timeout applies `on_timeout`. Approved,
its result is the decision (`approval_result`), so later steps read
`{{<step>_result.data.field}}`; rejected, it fails with `Rejected`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from kernel.errors import ErrorType
from kernel.limits import shallow_json
from kernel.schemas import schema_error
from workflows.shared.payloads import StrictPayload

Decision = Literal["approve", "reject"]

#: The longest an approval may wait, and `timeouts.wait_timeout`'s default.
MAX_WAIT_SECONDS = 7 * 24 * 3600


class ApprovalStep(StrictPayload):
    """An `approval` step's wait: what the person is asked, and what happens if nobody
    answers."""

    # `schema` is the key users write; the field cannot be named so (BaseModel has `schema`).
    model_config = ConfigDict(
        **StrictPayload.model_config, serialize_by_alias=True, validate_by_name=True
    )

    message: str = Field(
        min_length=1,
        description="What the person is asked (a template), sent with the `step.waiting` event.",
        examples=["Publish {{draft_result.title}}?"],
    )
    timeout: float | None = Field(
        default=None,
        gt=0,
        le=MAX_WAIT_SECONDS,
        description=("Seconds to wait for a decision; unset or longer: `timeouts.wait_timeout`."),
        examples=[3600],
    )
    on_timeout: Literal["approve", "reject", "fail"] = Field(
        default="fail",
        description=(
            "What the timeout decides: `approve` (no data), `reject` (fails `Rejected`) or"
            " `fail` (fails `ApprovalTimedOut`)."
        ),
    )
    schema_: Annotated[dict[str, Any], AfterValidator(shallow_json)] | None = Field(
        default=None,
        alias="schema",
        description="A JSON Schema the approval's `data` must follow (else the approval is 422).",
        examples=[{"type": "object", "required": ["channel"]}],
    )


class ApprovalDecision(StrictPayload):
    """The body of `POST /runs/{id}/steps/{step}/approve`."""

    decision: Decision = Field(default="approve", description="`approve` or `reject`.")
    comment: str | None = Field(default=None, max_length=10_000, description="Why, for readers.")
    data: Annotated[Any, AfterValidator(shallow_json)] = Field(
        default=None,
        description="Values for later steps (`{{<step>_result.data.field}}`), per its `schema`.",
    )


class Approval(BaseModel):
    """The update the gateway sends: a decision for one step, and who made it."""

    step_name: str
    decision: Decision = "approve"
    comment: str | None = None
    data: Any = None
    #: The caller: its tenant (`gateway.tenancy`), or `timeout` when the wait ran out.
    by: str = "default"


def wait_seconds(approval: ApprovalStep, wait_timeout: float) -> float:
    """How long the step waits: its own timeout, within the pipeline's `wait_timeout`."""
    return min(approval.timeout or wait_timeout, wait_timeout)


def refusal(
    approval: ApprovalStep | None, status: str | None, decided: bool, data: Any
) -> tuple[ErrorType, str] | None:
    """Why an approval cannot be taken (the update's validator), or None to take it.

    `status` is the step's, None for no such step; `decided`: a decision was taken already
    and the step has not moved on yet."""
    if approval is None or status is None:
        return ErrorType.NOT_WAITING, "no such approval step"
    if status != "waiting" or decided:
        return ErrorType.NOT_WAITING, f"the step is {status}, not waiting for an approval"
    schema = approval.schema_
    if schema is not None:
        error = schema_error(schema, data)
        if error is not None:
            where = "/".join(["data", *(str(part) for part in error.absolute_path)])
            return ErrorType.INVALID_APPROVAL_DATA, f"{where} breaks the schema: {error.message}"
    return None


def approval_result(approval: Approval, at: datetime) -> dict[str, Any]:
    """An approved step's result, as later steps read it."""
    return {
        "decision": approval.decision,
        "comment": approval.comment,
        "data": approval.data,
        "by": approval.by,
        "at": at.isoformat(),
    }
