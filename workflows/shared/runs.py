"""The words both engines report a run's and a step's state in, defined once.

A step is in one of `StepStatus`, whichever engine runs it; each engine uses the words that
apply to it:

    word        DAG pipelines                     instruction runs
    pending     not started yet                   not started yet
    running     its call is under way             its call is under way
    waiting     an approval step awaits a person  -
    completed   answered                          answered
    failed      gave up (or timed out)            gave up (or the run was cancelled meanwhile)
    skipped     -                                 never queued: a branch not taken
    aborted     a dependency failed               -
    cancelled   the run was cancelled             -

A run's state is said in each engine's own words, which differ for the same states: the
instruction API keeps the words its seed clients read (`complete`, `errored`, `terminated`),
the DAG API its own. One type holding both would let a DAG run be `errored` and tell API
clients it might be, so each engine has its own, side by side here:

    state                                DagRunState    InstructionRunState
    started, no worker has picked it up  running        queued
    going on                             running        running
    paused: starts no new step           paused         paused
    ended well                           completed      complete
    ended with a failure or timed out    failed         errored
    cancelled or terminated              cancelled      terminated

The records that carry these words (each engine's `StepState`, `StepError`, `RunError`) stay
with their engine's models: they hold different fields, and the instruction API writes them
in camelCase while the DAG API writes snake_case, so one class cannot keep both wire formats.
Literal types, not enums: payloads and recorded histories carry the bare strings.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

from pydantic import BaseModel, Field

StepStatus: TypeAlias = Literal[
    "pending", "running", "waiting", "completed", "failed", "skipped", "aborted", "cancelled"
]
DagRunState: TypeAlias = Literal["running", "paused", "completed", "failed", "cancelled"]
InstructionRunState: TypeAlias = Literal[
    "queued", "running", "paused", "complete", "errored", "terminated"
]


class ReuseSummary(BaseModel):
    """What a rerun did not pay for again: the steps it reused, the calls (attempts) they
    had made and the tokens their LLM calls had billed. Both engines' runs report it."""

    steps_reused: int = 0
    calls_saved: int = 0
    tokens_saved: int = 0
    #: Edited DAG steps (and steps downstream of them) whose request rendered as in the
    #: source, so they were reused too (counted above), in the order they were reached.
    unchanged: list[str] = Field(default_factory=list)
