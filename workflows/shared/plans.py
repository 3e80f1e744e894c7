"""What `POST /validate` answers for a valid payload: how it would run, without running it.

The same shape for both engines, so a client or the CLI prints either the same way.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, Field

Engine: TypeAlias = Literal["dag", "instructions"]


def engine_of(payload: Any) -> Engine | None:
    """The engine a payload is for, told by its shape: `STEPS_CONFIG` is a DAG pipeline's,
    `instructions` (or the legacy `firstInstruction`) an instruction run's; None: neither."""
    if isinstance(payload, dict):
        if "STEPS_CONFIG" in payload:
            return "dag"
        if "instructions" in payload or "firstInstruction" in payload:
            return "instructions"
    return None


class PlannedStep(BaseModel):
    """One step as the run would see it."""

    name: str = Field(description="The step's name (an instruction's index for instructions).")
    type: str = Field(
        description=(
            "What the step does: `http`, `llm` or `instructions` (in an instruction run's plan,"
            " the instruction's type)."
        )
    )
    dependencies: list[str] = Field(
        default_factory=list, description="The steps it waits for, by name."
    )
    reads: list[str] = Field(
        default_factory=list,
        description="The variables its templates read (`original_input`, `fetch_result`, ...).",
    )


class PlanWarning(BaseModel):
    """Something that runs, but probably not as meant."""

    loc: list[str | int] = Field(description="The path to the field at fault.")
    msg: str


class Plan(BaseModel):
    """How a payload would run: steps that may run together, level by level."""

    engine: Engine
    levels: list[list[str]] = Field(
        description=(
            "The steps by topological level: every step of a level may run together, once"
            " the levels before it are done."
        )
    )
    steps: list[PlannedStep]
    warnings: list[PlanWarning] = Field(default_factory=list)
