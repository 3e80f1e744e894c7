"""Reruns of a DAG run (`POST /runs/{id}/rerun`): which steps run again, which are taken as
the source run recorded them, and what the new run starts from.

A step runs again when it is `from_step` or edited, when it did not complete in the source
(it has nothing to reuse) or is a `map_over` step some of whose items failed, or when it lies
downstream of any of those; every other step is reused. A `map_over` step that runs again and
is not edited runs only its failed items, keeping the rest (`DagRerun.map_items`). The
gateway decides the plan once and carries the reused states in the new run's input
(`DagRerun`); the workflow only marks them completed (`reuse_steps`), so a rerun makes no
call for them.

An edit may not change what a step asks (a timeout, a header the result cache ignores, a
template that renders the same). Whether it did is only known once upstream results are in,
so the plan also carries the source states of the steps that run again *only* because of
edits (`unchanged_candidates`); the workflow, on reaching one with every upstream step
reused, renders its request and takes the source's state when the request's result-cache
key is the source's (`take_unchanged`): the same rule, on the same recorded values, on
replay.

Pure: no Temporal, no I/O; the gateway and the workflow both use it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from activities.store.models import redis_key
from workflows.dag.graph import DagGraph
from workflows.dag.mapping import MapCarry
from workflows.dag.models import DagRerun, DagRunResult, StepConfig, StepState
from workflows.dag.references import REF, result_variable
from workflows.shared.runs import ReuseSummary


class UnknownStep(ValueError):
    """A rerun names a step the source pipeline does not have."""


@dataclass(frozen=True)
class RerunPlan:
    """The edited pipeline's steps, and every step's fate, in payload order."""

    steps: list[dict[str, Any]]
    reused: list[str]
    rerun: list[str]


def edited_steps(
    source: Iterable[StepConfig], overrides: Mapping[str, Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], set[str]]:
    """The source's steps as JSON with each override's fields laid over its step, and the
    names of the steps an override actually changed (an override that repeats a value does
    not make its step run again)."""
    configs = [step.model_dump(mode="json", exclude_unset=True) for step in source]
    names = {config["step_name"] for config in configs}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise UnknownStep(f"no step named {', '.join(map(repr, unknown))} in the source run")
    changed: set[str] = set()
    merged: list[dict[str, Any]] = []
    for config in configs:
        fields = overrides.get(config["step_name"], {})
        edited = {**config, **fields}
        if any(config.get(key) != value for key, value in fields.items()):
            changed.add(config["step_name"])
        merged.append(edited)
    return merged, changed


def plan_rerun(
    graph: DagGraph, source: DagRunResult, from_step: str | None, edited: set[str]
) -> tuple[list[str], list[str]]:
    """(reused, rerun) step names in payload order: the seeds (`from_step`, the edited
    steps, the steps without a completed result) and everything downstream run again."""
    if from_step is not None and from_step not in graph.steps:
        raise UnknownStep(f"from_step {from_step!r} is not a step of the source run")
    # A renamed step is in the graph by its new name, which the source has no state for.
    seeds = set(edited).intersection(graph.steps)
    if from_step is not None:
        seeds.add(from_step)
    for name in graph.order:
        state = source.steps.get(name)
        if state is None or state.status != "completed" or state.failed_items:
            seeds.add(name)
    again = seeds | _downstream(graph, seeds)
    reused = [name for name in graph.order if name not in again]
    return reused, [name for name in graph.order if name in again]


def reused_states(
    source: DagRunResult, reused: Iterable[str], carry_items: Iterable[str] = ()
) -> DagRerun:
    """The reused steps as the source recorded them, each saying which run made its call
    (the source, or the run a rerun source had itself reused it from); and for each
    `map_over` step in `carry_items` that failed some items, its item results, so that it
    runs only those items again."""
    steps = {}
    for name in reused:
        state = source.steps[name].model_copy(deep=True)
        state.reused_from = state.reused_from or source.workflow_id
        steps[name] = state
    map_items = {
        name: MapCarry(results=carried.result, failed_items=carried.failed_items)
        for name in carry_items
        if (carried := source.steps.get(name)) is not None and carried.failed_items
    }
    return DagRerun(source=source.workflow_id, steps=steps, map_items=map_items)


def unchanged_candidates(
    graph: DagGraph, source: DagRunResult, from_step: str | None, rerun: Iterable[str]
) -> dict[str, StepState]:
    """The steps of `rerun` that run again only because of edits, and could be reused if
    their request turns out unchanged: they completed in the source with a request key
    (`http` and `llm` steps of runs that record one), are neither `from_step` nor downstream
    of it or of a step that did not complete, and hold no stored reference (`$ref`, whose
    value a run reads at its start only). Their source states, reused-from set."""
    forced = {name for name in graph.order if _not_completed(source, name)}
    if from_step is not None:
        forced.add(from_step)
    forced |= _downstream(graph, forced)
    candidates = {}
    for name in rerun:
        state = source.steps.get(name)
        if name in forced or state is None or _not_completed(source, name):
            continue
        if state.request_key is None or _holds_reference(state):
            continue
        candidate = state.model_copy(deep=True)
        candidate.reused_from = candidate.reused_from or source.workflow_id
        candidates[name] = candidate
    return candidates


def _not_completed(source: DagRunResult, name: str) -> bool:
    state = source.steps.get(name)
    return state is None or state.status != "completed"


def _downstream(graph: DagGraph, seeds: set[str]) -> set[str]:
    children = graph.downstream()
    found: set[str] = set()
    queue = deque(sorted(seeds))
    while queue:
        for child in children[queue.popleft()]:
            if child not in found:
                found.add(child)
                queue.append(child)
    return found


def _holds_reference(state: StepState) -> bool:
    values = [state.result, *state.outputs.values()]
    return any(isinstance(value, dict) and REF in value for value in values)


def reuse_steps(result: DagRunResult, rerun: DagRerun) -> dict[str, Any]:
    """Put the reused states into a new run's `result` (with its summary) and answer the
    template variables they provide: each result and output as the source recorded it.

    A value the source stored by reference (`$ref`) stays a reference: its whole value is
    read from the source run's outputs route, not copied into this run.
    """
    variables: dict[str, Any] = {}
    summary = ReuseSummary()
    for name, state in rerun.steps.items():
        variables.update(_take(result, summary, name, state))
    result.rerun_of = rerun.source
    result.reuse = summary
    return variables


def is_unchanged(
    rerun: DagRerun, name: str, request_key: str | None, upstream_reused: bool
) -> bool:
    """Whether a step reached in a rerun is taken from its source after all: it ran again
    only because of edits, every step upstream of it was reused, and its request renders to
    the key its source's call had."""
    candidate = rerun.edited.get(name)
    return (
        candidate is not None
        and upstream_reused
        and request_key is not None
        and request_key == candidate.request_key
    )


def take_unchanged(result: DagRunResult, rerun: DagRerun, name: str) -> dict[str, Any]:
    """Take an unchanged step's source state into `result` (counted in its summary, named in
    `unchanged`) and answer the template variables it provides."""
    summary = result.reuse or ReuseSummary()
    result.reuse = summary
    summary.unchanged.append(name)
    return _take(result, summary, name, rerun.edited[name].model_copy(deep=True))


def _take(
    result: DagRunResult, summary: ReuseSummary, name: str, state: StepState
) -> dict[str, Any]:
    result.steps[name] = state
    summary.steps_reused += 1
    summary.calls_saved += max(state.attempts, 1)
    if state.usage is not None:
        summary.tokens_saved += state.usage.input_tokens + state.usage.output_tokens
    return {result_variable(name): state.result, **state.outputs}


def stored_references(rerun: DagRerun, tenant: str | None, namespace: str) -> dict[str, str]:
    """The Redis key of every reused value the source kept by reference, by the template
    variable it fills: the run reads them once at its start, so later steps template whole
    values while its state keeps showing the references."""
    keys: dict[str, str] = {}
    for name, state in rerun.steps.items():
        shown = {result_variable(name): state.result, **state.outputs}
        for variable, value in shown.items():
            if isinstance(value, dict) and isinstance(value.get(REF), str):
                run_id, stored = stored_name(value[REF])
                keys[variable] = redis_key(tenant, namespace, run_id, stored)
    return keys


def stored_name(route: str) -> tuple[str, str]:
    """(workflow id, stored name) of a reference's route (`workflows.dag.references`):
    `/runs/<id>/outputs/<name>` or `/runs/<id>/steps/<step>/result`."""
    path = route.removeprefix("/runs/")
    if path.endswith("/result") and "/steps/" in path:
        run_id, step = path.removesuffix("/result").rsplit("/steps/", 1)
        return run_id, result_variable(unquote(step))
    run_id, name = path.rsplit("/outputs/", 1)
    return run_id, unquote(name)
