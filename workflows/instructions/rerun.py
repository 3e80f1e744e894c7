"""Reruns of an instruction run (`POST /runs/{id}/rerun`): which instructions are taken as the
source run recorded them, and the queue the new run starts from. Pure: no Temporal, no I/O;
the gateway plans, the workflow applies (`reuse_steps`).

The source's executed steps are walked in its order with a fresh `InstructionPlan` of the
(edited) instructions, each reused step's recorded condition verdict steering the queue as it
did in the source. The walk stops at the first step that must run again: `from_instruction`,
an edited instruction, a step that did not complete, or a step the new plan would not have
handed out next (an edit changed the branches). What was walked is reused; the plan's state
there is the new run's start, so the step it stops at sees the same previous result and
thread results, and takes the same jumps, as it did in the source. With no
`from_instruction`, that is the first step that did not complete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic.alias_generators import to_snake

from workflows.instructions.models import (
    EndpointInstruction,
    Instruction,
    InstructionRerun,
    InstructionRunStatus,
    LlmInstruction,
    PlanState,
    RouterInstruction,
    StepState,
    ThreadInstruction,
    condition_of,
)
from workflows.instructions.plan import InstructionPlan
from workflows.shared.runs import ReuseSummary


class UnknownInstruction(ValueError):
    """A rerun names an instruction the source run does not have, or one it never reached."""


@dataclass(frozen=True)
class InstructionRerunPlan:
    """The reused steps (in the source's order) and the queue the rerun starts with."""

    reused: list[int]
    plan: PlanState

    @property
    def queued(self) -> list[int]:
        """The steps queued to run, front first (a branch taken later may add more)."""
        done = set(self.plan.executed)
        return list(dict.fromkeys(i for i in self.plan.queue if i not in done))


def edited_instructions(
    source: Sequence[Instruction], overrides: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Any], set[int]]:
    """The source's instructions as JSON with each override's fields laid over its
    instruction (keyed by index), and the indices an override actually changed."""
    configs: list[dict[str, Any]] = [
        instruction.model_dump(mode="json", by_alias=True, exclude_unset=True)
        for instruction in source
    ]
    changed: set[int] = set()
    for key, fields in overrides.items():
        if not key.isdecimal() or int(key) >= len(configs):
            raise UnknownInstruction(
                f"instructions: no instruction {key!r} in the source run"
                f" ({len(configs)} instructions, 0-based)"
            )
        index = int(key)
        config = configs[index]
        for field, value in fields.items():
            # `api_url` edits what the instruction wrote as `apiUrl`, and the other way round.
            spellings = [name for name in config if to_snake(name) == to_snake(field)]
            if not spellings or config[spellings[0]] != value:
                changed.add(index)
            for name in spellings:
                del config[name]
            config[field] = value
    return configs, changed


def plan_rerun(
    instructions: Sequence[Instruction],
    source: InstructionRunStatus,
    from_instruction: int | None,
    edited: set[int],
) -> InstructionRerunPlan:
    """Walk the source's executed steps while they may be reused; see the module docstring.

    Raises:
        UnknownInstruction: `from_instruction` is out of range or never ran in the source.
    """
    stops = set(edited)
    if from_instruction is not None:
        if from_instruction not in source.execution_order:
            raise UnknownInstruction(
                f"from_instruction: instruction {from_instruction} did not run in the source"
                f" run (it ran {source.execution_order})"
            )
        stops.add(from_instruction)
    # Executions are bounded by the walk itself (each step at most once).
    plan = InstructionPlan(instructions, max_steps=len(instructions) + 1)
    reused: list[int] = []
    for index in source.execution_order:
        start = plan.state()
        state = source.steps[index]
        if index in stops or state.status != "completed" or plan.next_step() != index:
            return InstructionRerunPlan(reused=reused, plan=start)
        plan.record_executed(index)
        condition = condition_of(instructions[index])
        if condition is not None:
            if state.condition is None:
                return InstructionRerunPlan(reused=reused, plan=start)
            plan.on_condition(state.condition.verdict, condition.if_true, condition.if_false)
        reused.append(index)
    return InstructionRerunPlan(reused=reused, plan=plan.state())


def reused_states(
    source_id: str, source: InstructionRunStatus, planned: InstructionRerunPlan
) -> InstructionRerun:
    """The reused steps as the source recorded them, each saying which run made its call
    (the source, or the run a rerun source had itself reused it from)."""
    steps = []
    for index in planned.reused:
        state = source.steps[index].model_copy(deep=True)
        state.reused_from = state.reused_from or source_id
        steps.append(state)
    return InstructionRerun(source=source_id, steps=steps, plan=planned.plan)


def calls_made(instruction: Instruction, state: StepState) -> int:
    """The calls (LLM or HTTP) a completed step made: what reusing it saves. A condition
    step's and an approval's are only its LLM verdict, if any."""
    calls = 0
    if isinstance(instruction, RouterInstruction):
        calls = 2  # the model's choice, then the chosen endpoint
    elif isinstance(instruction, LlmInstruction | EndpointInstruction):
        calls = 1
    elif isinstance(instruction, ThreadInstruction):
        check = instruction.completion_check
        calls = 1 if check is not None and check.mode == "llm" else 0
    if state.condition is not None and state.condition.mode == "llm":
        calls += 1
    return calls


def reuse_steps(
    status: InstructionRunStatus, rerun: InstructionRerun, instructions: Sequence[Instruction]
) -> dict[int, str | None]:
    """Put the reused states into a new run's status (with its summary, and the source's
    order of execution up to the rerun's start) and answer their results by index."""
    summary = ReuseSummary()
    results: dict[int, str | None] = {}
    for state in rerun.steps:
        status.steps[state.index] = state
        results[state.index] = state.result
        summary.steps_reused += 1
        summary.calls_saved += calls_made(instructions[state.index], state)
        summary.tokens_saved += state.usage.input_tokens + state.usage.output_tokens
    status.execution_order = list(rerun.plan.executed)
    if status.execution_order:
        status.output = results.get(status.execution_order[-1])
    status.rerun_of = rerun.source
    status.reuse = summary
    return results
