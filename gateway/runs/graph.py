"""A run's shape, as the run page draws it (`GET /runs/{workflow_id}/graph`): the plan of the
input it was started with, which the run's status does not carry (a step's state says nothing
of what it waits for).

A DAG run answers `POST /validate`'s plan of its pipeline (steps by level, each with its
dependencies); an instruction run its queue, one instruction a level, with the jumps its
conditions may take (`ifTrue`, `ifFalse`). The input is read from the first event of the
run's latest history: a run that continued as new carries the same steps.
"""

from __future__ import annotations

from pydantic import Field

from gateway.errors import RunNotFound
from gateway.runs.dag import DAG_RUNS
from gateway.runs.instructions import INSTRUCTION_RUNS
from gateway.runs.service import RunStatusService
from kernel.redact import redact_url
from workflows.dag.models import DagRunInput, StepConfig
from workflows.dag.plan import plan_pipeline
from workflows.instructions.models import Instruction, InstructionRunInput, condition_of
from workflows.shared.plans import Plan, PlannedStep

#: How much of a prompt a request summary quotes.
PROMPT_CHARS = 160


class RunGraph(Plan):
    """A run's plan, and where an instruction run's conditions may send it."""

    jumps: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Instruction runs: the steps each step's condition may queue next, by name"
        " (its `ifTrue` then its `ifFalse`). Empty for a DAG run.",
    )
    requests: dict[str, str] = Field(
        default_factory=dict,
        description="What each step asks, in a line, as written (templates unrendered, URLs"
        " without query values): `POST https://host/path`, `openai/gpt-5-nano: <prompt>`.",
    )


async def run_graph(runs: RunStatusService, workflow_id: str) -> RunGraph:
    """The graph of the tenant's run `workflow_id`; `RunNotFound` when it has none."""
    description = await runs.describe(workflow_id, "workflow_id")
    engines = (DAG_RUNS.workflow_type, INSTRUCTION_RUNS.workflow_type)
    if description.workflow_type not in engines:
        raise RunNotFound(f"{workflow_id!r} is not a pipeline or instruction run")
    started = None
    async for event in runs.handle(workflow_id).fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        if payloads:
            [started] = await runs.client.data_converter.decode(payloads[:1])
        break
    if started is None:
        raise RunNotFound(f"run {workflow_id!r} has no input to draw")
    if description.workflow_type == INSTRUCTION_RUNS.workflow_type:
        return instruction_graph(InstructionRunInput.model_validate(started))
    run = DagRunInput.model_validate(started)
    requests = {step.step_name: step_request(step) for step in run.STEPS_CONFIG}
    return RunGraph(**dict(plan_pipeline(run)), requests=requests)


def instruction_graph(run: InstructionRunInput) -> RunGraph:
    """An instruction run's queue, as written: each instruction after the one before it, and
    the jumps its conditions may take."""
    names = [str(index) for index in range(len(run.instructions))]
    steps = [
        PlannedStep(name=name, type=instruction.type, dependencies=names[:index][-1:])
        for index, (name, instruction) in enumerate(zip(names, run.instructions, strict=True))
    ]
    jumps = {}
    for name, instruction in zip(names, run.instructions, strict=True):
        condition = condition_of(instruction)
        if condition is not None and (condition.if_true or condition.if_false):
            jumps[name] = [str(target) for target in (*condition.if_true, *condition.if_false)]
    return RunGraph(
        engine="instructions",
        levels=[[name] for name in names],
        steps=steps,
        jumps=jumps,
        requests={
            name: instruction_request(instruction)
            for name, instruction in zip(names, run.instructions, strict=True)
        },
    )


def step_request(step: StepConfig) -> str:
    """A DAG step's request in a line: its call, its model and prompt, or its child run."""
    if step.llm is not None:
        prompt = step.llm.prompt or (step.llm.messages[-1].content if step.llm.messages else "")
        return f"{step.llm.provider}/{step.llm.model}: {str(prompt)[:PROMPT_CHARS]}"
    if step.approval is not None:
        return f"approval: {step.approval.message[:PROMPT_CHARS]}"
    if step.instructions is not None:
        count = len(step.instructions.get("instructions", []))
        return f"instruction run of {count} instructions"
    if step.service_url is not None:
        return f"{step.method} {redact_url(step.service_url)}"
    return step.type


def instruction_request(instruction: Instruction) -> str:
    """An instruction's request in a line: its prompt or URL (its type when it has neither)."""
    text = getattr(instruction, "instruction", None) or getattr(instruction, "api_url", None)
    if not isinstance(text, str):
        return instruction.type
    if text.startswith(("http://", "https://")):
        text = redact_url(text)
    return text[:PROMPT_CHARS]
