"""Every problem in a DAG pipeline, the `instructions` steps' bodies included.

`workflows.dag.graph.validate_pipeline` checks what the DAG engine knows; the body of an
`instructions` step is an instruction run's, which only the instruction engine's model can
check, and engines do not import each other, so the gateway (which knows both) joins them.
"""

from __future__ import annotations

from pydantic import ValidationError

from workflows.dag.graph import Problem, validate_pipeline
from workflows.dag.models import DagRunInput
from workflows.instructions.models import InstructionRunRequest


def pipeline_problems(run: DagRunInput) -> list[Problem]:
    """Every problem in `run`, none if it may start."""
    problems = validate_pipeline(run)
    for i, step in enumerate(run.STEPS_CONFIG):
        if step.type != "instructions" or step.instructions is None:
            continue
        try:
            InstructionRunRequest.model_validate(step.instructions)
        except ValidationError as exc:
            problems += [
                Problem(
                    ("STEPS_CONFIG", i, "instructions", *error["loc"]),
                    f"step {step.step_name!r}: {error['msg']}",
                    error["type"],
                )
                for error in exc.errors()
            ]
    return problems
