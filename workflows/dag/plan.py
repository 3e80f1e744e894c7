"""How a valid pipeline would run (`POST /validate`): its levels, what each step reads, and
warnings about what runs but is probably a mistake. Pure logic, no Temporal.

A step's type and its templates are read from the step model and `graph.step_templates`, so
a new kind of step shows here as soon as those know it.
"""

from __future__ import annotations

from activities.http.models import SECRETS_ROOT
from workflows.dag.graph import DagGraph, step_templates
from workflows.dag.models import PipelineRequest, StepConfig
from workflows.shared.plans import Plan, PlannedStep, PlanWarning
from workflows.shared.templating import TemplateError, references


def step_reads(step: StepConfig) -> list[str]:
    """The variables a step's templates name, in order of first use (secrets left out)."""
    names: dict[str, None] = {}
    for _, template in step_templates(step):
        try:
            found = references(template)
        except TemplateError:
            continue
        for _, reference in found:
            if reference.root != SECRETS_ROOT:
                names.setdefault(reference.root, None)
    return list(names)


def levels(graph: DagGraph) -> list[list[str]]:
    """The steps by topological level, each level in payload order (the graph has no cycle)."""
    level: dict[str, int] = {}
    for name in _topological(graph):
        level[name] = 1 + max((level[dep] for dep in graph.upstream[name]), default=-1)
    grouped: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for name in graph.order:
        grouped[level[name]].append(name)
    return grouped


def _topological(graph: DagGraph) -> list[str]:
    children = graph.downstream()
    waiting = {name: len(graph.upstream[name]) for name in graph.order}
    ready = [name for name in graph.order if not waiting[name]]
    ordered: list[str] = []
    while ready:
        name = ready.pop(0)
        ordered.append(name)
        for child in children[name]:
            waiting[child] -= 1
            if not waiting[child]:
                ready.append(child)
    return ordered


def _warnings(pipeline: PipelineRequest, reads: dict[str, list[str]]) -> list[PlanWarning]:
    read_anywhere = {name for names in reads.values() for name in names}
    default_retries = pipeline.PIPELINE_SETTINGS.error_handling.max_retries
    warnings = []
    for i, step in enumerate(pipeline.STEPS_CONFIG):
        for k, output in enumerate(step.outputs):
            if output not in read_anywhere:
                warnings.append(
                    PlanWarning(
                        loc=["STEPS_CONFIG", i, "outputs", k],
                        msg=f"step {step.step_name!r}: no step reads output {output!r}"
                        " (the run's outputs still list it)",
                    )
                )
        retries = step.max_retries if step.max_retries is not None else default_retries
        if retries == 0 and step.type == "http":
            warnings.append(
                PlanWarning(
                    loc=["STEPS_CONFIG", i, "max_retries"],
                    msg=f"step {step.step_name!r}: max_retries is 0, so one 5xx, 429 or"
                    " timeout of its target fails it",
                )
            )
        if step.type == "llm" and step.llm is not None and step.llm.max_tokens is None:
            warnings.append(
                PlanWarning(
                    loc=["STEPS_CONFIG", i, "llm", "max_tokens"],
                    msg=f"step {step.step_name!r}: no max_tokens, so the answer's length"
                    " (and cost) is the provider's default",
                )
            )
    return warnings


def plan_pipeline(pipeline: PipelineRequest) -> Plan:
    """The plan of a pipeline `graph.validate_pipeline` found no problem in."""
    graph = DagGraph.build(pipeline.STEPS_CONFIG)
    reads = {step.step_name: step_reads(step) for step in pipeline.STEPS_CONFIG}
    steps = [
        PlannedStep(
            name=step.step_name,
            type=step.type,
            dependencies=graph.upstream[step.step_name],
            reads=reads[step.step_name],
        )
        for step in pipeline.STEPS_CONFIG
    ]
    return Plan(
        engine="dag",
        levels=levels(graph),
        steps=steps,
        warnings=_warnings(pipeline, reads),
    )
