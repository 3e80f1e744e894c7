"""The instruction runner's queue policy, free of Temporal so it is tested synchronously.

The workflow is a thin loop over `InstructionPlan`::

    plan = InstructionPlan(run.instructions)
    while (index := plan.next_step()) is not None:
        source = plan.input_source(index)          # None: the run's context
        previous = source_text(source, results, run.context)
        ... run instruction `index` on `previous`, store results[index] ...
        plan.record_executed(index)
        if (condition := condition_of(run.instructions[index])) is not None:
            subject = source_text(plan.condition_source(index), results, run.context)
            verdict = ...  # deterministic (workflows.instructions.conditions) or LLM
            plan.on_condition(verdict, condition.if_true, condition.if_false)

Semantics:

- Steps named in any `ifTrue`/`ifFalse` (of LLM-nested, standalone and endpoint
  conditions) are *branch targets*: they run only when a condition picks them. The queue
  starts as every other step, in order.
- A condition's chosen targets go to the *front* of the queue, in the order written, so
  a branch runs before the steps that follow it in the list.
- No step runs twice: `next_step` skips indices already executed, so a branch back to an
  earlier step does nothing and loops are impossible. `StepBudgetExceeded` is a second
  guard, a cap on executions that callers may set below the instruction count.
- Each step's input is the result of the step executed just before it (the run's context
  for the first step): `input_source`.
- A condition nested in step *i* (LLM or endpoint) is evaluated once step *i* has run, on
  the result of step `evaluateAfterStep` (default *i*).
- A standalone condition step evaluates the result of the step executed before it (the
  context when it runs first) unless `evaluateAfterStep` names another step. Its own
  result is its input passed through unchanged, so the step after it sees the same text
  it would have seen without the condition in between.
- A condition that looks at a step with no result (never ran, or failed) sees empty text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from kernel.answers import match_option
from kernel.errors import ErrorType, WorkflowStationError
from workflows.instructions.models import (
    ConditionInstruction,
    Instruction,
    PlanState,
    RouterInstruction,
    RouterOption,
    condition_of,
)
from workflows.shared.templating import Renderer


class StepBudgetExceeded(WorkflowStationError, RuntimeError):
    """More steps were about to run than the budget allows.

    Attributes:
        budget: The cap that was reached.
        next_index: The step that would have run next.
    """

    error_type = ErrorType.STEP_BUDGET_EXCEEDED

    def __init__(self, budget: int, next_index: int) -> None:
        super().__init__(f"step budget of {budget} executions exhausted before step {next_index}")
        self.budget = budget
        self.next_index = next_index


class InstructionPlan:
    """Which instruction runs next, given what has run and how conditions came out.

    Args:
        instructions: The run's instructions (validated `InstructionRunInput.instructions`).
        max_steps: Executions allowed before `next_step` raises `StepBudgetExceeded`. Without
            re-execution a run cannot exceed its instruction count; the cap stops a policy bug
            from running away.
    """

    def __init__(
        self,
        instructions: Sequence[Instruction],
        *,
        max_steps: int,
        state: PlanState | None = None,
    ) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self._instructions = list(instructions)
        self._max_steps = max_steps
        targets: set[int] = set()
        for instruction in self._instructions:
            condition = condition_of(instruction)
            if condition is not None:
                targets.update(condition.if_true)
                targets.update(condition.if_false)
        self.branch_targets: frozenset[int] = frozenset(targets)
        self._queue: list[int] = [
            index for index in range(len(self._instructions)) if index not in targets
        ]
        self._executed: list[int] = []
        if state is not None:
            # Continued as new: where the run before this one left the queue.
            self._queue = list(state.queue)
            self._executed = list(state.executed)
        self._executed_set: set[int] = set(self._executed)

    def state(self) -> PlanState:
        """The queue and what has run, for the next run of a chain that continues as new."""
        return PlanState(queue=list(self._queue), executed=list(self._executed))

    @property
    def last_executed(self) -> int | None:
        """The most recently executed step; its result is the run's output."""
        return self._executed[-1] if self._executed else None

    def next_step(self) -> int | None:
        """Remove and return the next step to run, or None when the run is done.

        Raises:
            StepBudgetExceeded: A step is waiting but `max_steps` have already executed.
        """
        while self._queue:
            index = self._queue.pop(0)
            if index in self._executed_set:
                continue
            if len(self._executed) >= self._max_steps:
                self._queue.insert(0, index)
                raise StepBudgetExceeded(self._max_steps, index)
            return index
        return None

    def record_executed(self, index: int) -> None:
        """Mark `index` as run (succeeded or failed), so it is never handed out again.

        Raises:
            ValueError: `index` is out of range or already recorded.
        """
        self._check_index(index)
        if index in self._executed_set:
            raise ValueError(f"step {index} was already executed")
        self._executed.append(index)
        self._executed_set.add(index)

    def on_condition(
        self, verdict: bool, targets_true: Sequence[int], targets_false: Sequence[int]
    ) -> list[int]:
        """Queue the targets `verdict` selects at the front, in order, and return them."""
        chosen = list(targets_true if verdict else targets_false)
        for index in chosen:
            self._check_index(index)
        self._queue[0:0] = chosen
        return chosen

    def input_source(self, index: int) -> int | None:
        """The step whose result is step `index`'s input; None means the run's context.

        That is the step executed just before `index`; call it before or after
        `record_executed(index)`, the answer is the same.
        """
        self._check_index(index)
        if index in self._executed_set:
            position = self._executed.index(index)
            return self._executed[position - 1] if position > 0 else None
        return self.last_executed

    def condition_source(self, index: int) -> int | None:
        """The step whose result step `index`'s condition tests; None means the context.

        Raises:
            ValueError: Step `index` has no condition.
        """
        self._check_index(index)
        instruction = self._instructions[index]
        condition = condition_of(instruction)
        if condition is None:
            raise ValueError(f"step {index} has no condition")
        if condition.evaluate_after_step is not None:
            return condition.evaluate_after_step
        if isinstance(instruction, ConditionInstruction):
            return self.input_source(index)
        return index

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self._instructions):
            raise ValueError(
                f"step {index} is out of range ({len(self._instructions)} instructions)"
            )


def source_text(source: int | None, results: Mapping[int, str | None], context: str) -> str:
    """The text a source names: the context for None, else that step's result ('' if none)."""
    if source is None:
        return context
    return results.get(source) or ""


def endpoint_renderer(
    result: str | None,
    context: str,
    max_chars: int | None = None,
    secret_names: Sequence[str] = (),
) -> Renderer:
    """What fills `{{result}}` and `{{context}}` into an endpoint step's headers and body.

    Spaces inside the braces are allowed (`{{ result }}`), a None result renders as '', any
    other placeholder is left as written (`{{secrets.NAME}}` among them, for the HTTP activity
    to fill in), and `max_chars` bounds all it renders together (`TemplateError` past it). A
    result or context holding a placeholder of one of the call's `secret_names` is refused.
    """
    variables = {"result": result or "", "context": context}
    return Renderer(variables, keep_unresolved=True, max_chars=max_chars, secret_names=secret_names)


def choose_router_option(
    router: RouterInstruction, answer: str | None
) -> tuple[RouterOption, bool]:
    """Map an LLM's answer to one of the router's options (`kernel.answers`).

    Returns:
        The chosen option and whether the fallback was used.
    """
    option = match_option(answer, router.options)
    if option is None:
        return router.fallback_option, True
    return option, False


def llm_prompt(instruction: str, previous: str) -> str:
    """An LLM step's prompt: its instruction, then the one text it works on (if any)."""
    if not previous.strip():
        return instruction
    return f"{instruction}\n\nInput:\n{previous}"


def endpoint_result_text(body: Any, is_json: bool) -> str:
    """An endpoint step's result: the response body as text, JSON re-serialised compactly."""
    if is_json:
        return json.dumps(body, ensure_ascii=False)
    return body if isinstance(body, str) else str(body)
