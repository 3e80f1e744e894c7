"""Pipeline validation and the dependency graph: pure logic, no Temporal.

The gateway runs `validate_pipeline` to answer 422 with every problem and marks the run as
validated; the workflow checks only runs started some other way (the `temporal` CLI), then
drives a `DagGraph`, asking it which steps are ready each time something finishes.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from jsonschema import SchemaError, validators

from activities.http.models import HTTP_METHODS, SECRETS_ROOT, is_http_url, secret_name
from workflows.dag.mapping import ITEM_ROOTS, map_over_problem
from workflows.dag.models import DagRunInput, StepConfig
from workflows.shared.endpoints import UnknownEndpoint, resolve_endpoint
from workflows.shared.templating import TemplateError, references, secret_names

SELECTION_PREFIX = "selection_"
BASE_VARIABLES = ("original_input", "input_data")
#: Placeholders of an `instructions` step that its child run fills in, not the DAG.
CHILD_ROOTS = ("result", "context")
#: The field each step type needs, and no other type may set.
OWN_FIELD = {
    "http": "service_url",
    "llm": "llm",
    "instructions": "instructions",
    "approval": "approval",
}
#: Fields of an HTTP call, which `llm` and `instructions` steps do not make.
#: Where a secret named in a step that is no HTTP call would go.
SECRET_LEAKS = {"llm": "sent to a model", "approval": "shown to a person"}
HTTP_ONLY = ("service_url", "headers", "input_prep_config", "endpoint")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a payload: `loc` is the path to the field, as in FastAPI's 422."""

    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"

    def as_dict(self) -> dict[str, object]:
        return {"loc": ["body", *self.loc], "msg": self.msg, "type": self.type}


def is_selection(name: str) -> bool:
    return name.startswith(SELECTION_PREFIX)


@dataclass(frozen=True)
class Ancestry:
    """Which steps lie upstream of which, as bit sets over payload positions."""

    bits: dict[str, int]
    position: dict[str, int]

    def includes(self, step: str, ancestor: str) -> bool:
        """True when `ancestor` is upstream of `step`, directly or through other steps."""
        return bool(self.bits[step] >> self.position[ancestor] & 1)


@dataclass
class DagGraph:
    """Steps by name with their resolved upstream steps, in payload order."""

    steps: dict[str, StepConfig]
    upstream: dict[str, list[str]]
    selections: dict[str, list[str]]
    order: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, configs: Iterable[StepConfig]) -> DagGraph:
        configs = list(configs)
        steps = {step.step_name: step for step in configs}
        by_usid = {step.usid: step.step_name for step in configs}
        producers: dict[str, str] = {}
        for step in configs:
            for output in step.outputs:
                producers.setdefault(output, step.step_name)
        upstream: dict[str, list[str]] = {}
        selections: dict[str, list[str]] = {}
        for step in configs:
            deps: list[str] = []
            sels: list[str] = []
            for dep in step.dependencies:
                if is_selection(dep):
                    sels.append(dep)
                    producer = producers.get(dep)
                else:
                    producer = dep if dep in steps else by_usid.get(dep)
                if producer is not None and producer != step.step_name and producer not in deps:
                    deps.append(producer)
            upstream[step.step_name] = deps
            selections[step.step_name] = sels
        return cls(steps, upstream, selections, [step.step_name for step in configs])

    def downstream(self) -> dict[str, list[str]]:
        """Each step's direct dependents, in payload order."""
        children: dict[str, list[str]] = {name: [] for name in self.order}
        for name in self.order:
            for dep in self.upstream[name]:
                children[dep].append(name)
        return children

    def ancestry(self) -> Ancestry:
        """Every step's transitive upstream steps, in one pass over the graph.

        Built in topological order as bit sets over payload positions, so a 10,000-step chain
        costs milliseconds, not a walk per step. A step on a cycle sees only what lies above it.
        """
        position = {name: index for index, name in enumerate(self.order)}
        children = self.downstream()
        waiting = {name: len(self.upstream[name]) for name in self.order}
        bits = dict.fromkeys(self.order, 0)
        queue = deque(name for name in self.order if not waiting[name])
        while queue:
            name = queue.popleft()
            for child in children[name]:
                bits[child] |= bits[name] | (1 << position[name])
                waiting[child] -= 1
                if not waiting[child]:
                    queue.append(child)
        return Ancestry(bits, position)

    def find_cycles(self) -> list[list[str]]:
        """Each cycle once, as the list of steps on it, in payload order where possible."""
        index = {name: i for i, name in enumerate(self.order)}
        color: dict[str, int] = {}
        cycles: list[list[str]] = []
        seen_sets: set[frozenset[str]] = set()

        def visit(start: str) -> None:
            # Iterative DFS so a 1000-step chain cannot hit the recursion limit.
            path: list[str] = [start]
            iters = [iter(self.upstream[start])]
            color[start] = 1
            while iters:
                nxt = next(iters[-1], None)
                if nxt is None:
                    color[path.pop()] = 2
                    iters.pop()
                    continue
                state = color.get(nxt, 0)
                if state == 0:
                    color[nxt] = 1
                    path.append(nxt)
                    iters.append(iter(self.upstream[nxt]))
                elif state == 1:
                    cycle = path[path.index(nxt) :]
                    key = frozenset(cycle)
                    if key not in seen_sets:
                        seen_sets.add(key)
                        cycle = list(reversed(cycle))
                        first = min(range(len(cycle)), key=lambda i: index[cycle[i]])
                        cycles.append(cycle[first:] + cycle[:first])

        for name in self.order:
            if color.get(name, 0) == 0:
                visit(name)
        return cycles


def step_variables(step: StepConfig) -> list[str]:
    return [f"{step.step_name}_result", *step.outputs]


def step_templates(step: StepConfig) -> list[tuple[tuple[str | int, ...], object]]:
    """The templated parts of a step, each with its location for error messages."""
    mapped = [(("map_over",), step.map_over)] if step.map_over is not None else []
    return mapped + _own_templates(step)


def _own_templates(step: StepConfig) -> list[tuple[tuple[str | int, ...], object]]:
    if step.type == "llm":
        if step.llm is None:
            return []
        call = step.llm.model_dump(include={"model", "system", "prompt", "messages"})
        return [(("llm", key), call[key]) for key in ("model", "system", "prompt", "messages")]
    if step.type == "instructions":
        return [(("instructions",), step.instructions)]
    if step.type == "approval":
        return [(("approval", "message"), step.approval.message if step.approval else None)]
    parts: list[tuple[tuple[str | int, ...], object]] = [
        (("service_url",), step.service_url),
        (("headers",), step.headers),
    ]
    prep = step.input_prep_config
    if prep is not None:
        parts += [
            (("input_prep_config", "body"), prep.body),
            (("input_prep_config", "query"), prep.query),
            (("input_prep_config", "headers"), prep.headers),
        ]
    return parts


def step_secrets(step: StepConfig) -> list[str]:
    """The secrets a step's templates name (`{{secrets.NAME}}`), for its HTTP activity."""
    return secret_names(*(template for _, template in step_templates(step)))


def _type_problems(i: int, step: StepConfig) -> list[Problem]:
    """What a step sets that its `type` does not take, or lacks that it needs."""
    problems: list[Problem] = []
    own = OWN_FIELD[step.type]
    if getattr(step, own) is None:
        problems.append(
            Problem(
                ("STEPS_CONFIG", i, own),
                f"step {step.step_name!r}: {own} is required for an {step.type} step",
            )
        )
    foreign = [field for kind, field in OWN_FIELD.items() if kind != step.type]
    if step.type != "http":
        foreign += HTTP_ONLY
    for name in dict.fromkeys(foreign):
        if name == own or name not in step.model_fields_set or getattr(step, name) in (None, {}):
            continue
        owner = next((kind for kind, field in OWN_FIELD.items() if field == name), "http")
        problems.append(
            Problem(
                ("STEPS_CONFIG", i, name),
                f"step {step.step_name!r}: {name} is for {owner} steps, and this is an"
                f" {step.type} step",
            )
        )
    schemas = [
        (("llm", "output_schema"), step.llm.output_schema if step.llm else None),
        (("approval", "schema"), step.approval.schema_ if step.approval else None),
    ]
    for loc, schema in schemas:
        if schema is None:
            continue
        try:
            validators.validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            problems.append(
                Problem(
                    ("STEPS_CONFIG", i, *loc),
                    f"step {step.step_name!r}: {loc[-1]} is no JSON Schema: {exc.message}",
                )
            )
    return problems


def _map_problems(i: int, step: StepConfig) -> list[Problem]:
    """A `map` without `map_over`, a mapped approval, or a `map_over` that is no template."""
    if step.map_over is None:
        if step.map is None:
            return []
        return [Problem(("STEPS_CONFIG", i, "map"), f"step {step.step_name!r}: map needs map_over")]
    if step.type == "approval":
        return [
            Problem(
                ("STEPS_CONFIG", i, "map_over"),
                f"step {step.step_name!r}: an approval step cannot map over a list",
            )
        ]
    problem = map_over_problem(step.map_over)
    if problem is None:
        return []
    return [Problem(("STEPS_CONFIG", i, "map_over"), f"step {step.step_name!r}: {problem}")]


#: Step types whose calls the result cache can answer (`PIPELINE_SETTINGS.cache.steps`).
CACHEABLE_TYPES = ("http", "llm")


def _cache_problems(run: DagRunInput) -> list[Problem]:
    """Each name in `PIPELINE_SETTINGS.cache.steps` must be a step whose call can be cached."""
    cache = run.PIPELINE_SETTINGS.cache
    if cache is None:
        return []
    types = {step.step_name: step.type for step in run.STEPS_CONFIG}
    problems: list[Problem] = []
    for k, name in enumerate(cache.steps):
        loc = ("PIPELINE_SETTINGS", "cache", "steps", k)
        if name not in types:
            problems.append(Problem(loc, f"cache.steps names {name!r}, which is no step_name"))
        elif types[name] not in CACHEABLE_TYPES:
            problems.append(
                Problem(
                    loc,
                    f"step {name!r} is an {types[name]!r} step: only http and llm steps are cached",
                )
            )
    return problems


def validate_pipeline(run: DagRunInput) -> list[Problem]:
    """Every problem in a payload that pydantic's type checks cannot see, none if it is valid."""
    problems: list[Problem] = []
    steps = run.STEPS_CONFIG
    first_by_name: dict[str, int] = {}
    first_by_usid: dict[str, int] = {}
    first_by_output: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.step_name in first_by_name:
            problems.append(
                Problem(
                    ("STEPS_CONFIG", i, "step_name"),
                    f"duplicate step_name {step.step_name!r}"
                    f" (also step {first_by_name[step.step_name]})",
                )
            )
        first_by_name.setdefault(step.step_name, i)
        if step.usid in first_by_usid:
            problems.append(
                Problem(
                    ("STEPS_CONFIG", i, "usid"),
                    f"duplicate usid {step.usid!r} (also step {first_by_usid[step.usid]})",
                )
            )
        first_by_usid.setdefault(step.usid, i)
        for k, output in enumerate(step.outputs):
            # One producer per name: otherwise the value would depend on which finished last.
            if output in first_by_output and first_by_output[output] != i:
                problems.append(
                    Problem(
                        ("STEPS_CONFIG", i, "outputs", k),
                        f"step {step.step_name!r}: output {output!r} is also produced by step"
                        f" {first_by_output[output]}",
                    )
                )
            first_by_output.setdefault(output, i)
        problems += _type_problems(i, step)
        problems += _map_problems(i, step)
        if step.method not in HTTP_METHODS:
            problems.append(
                Problem(
                    ("STEPS_CONFIG", i, "method"),
                    f"step {step.step_name!r}: method {step.method!r} is not one of "
                    + ", ".join(HTTP_METHODS),
                )
            )
        if step.endpoint is not None:
            try:
                route = resolve_endpoint(step.endpoint, run.engine.endpoint_workers)
            except UnknownEndpoint as exc:
                problems.append(
                    Problem(("STEPS_CONFIG", i, "endpoint"), f"step {step.step_name!r}: {exc}")
                )
            else:
                if route.kind != "worker":
                    problems.append(
                        Problem(
                            ("STEPS_CONFIG", i, "endpoint"),
                            f"step {step.step_name!r}: endpoint {step.endpoint!r} names no"
                            " endpoint worker (configured: "
                            + (", ".join(run.engine.endpoint_workers) or "none")
                            + ")",
                        )
                    )
        url = step.service_url
        if url is not None and "{{" not in url and not is_http_url(url):
            problems.append(
                Problem(
                    ("STEPS_CONFIG", i, "service_url"),
                    f"step {step.step_name!r}: service_url {url!r} is not an http(s) URL",
                )
            )
        for j, dep in enumerate(step.dependencies):
            if is_selection(dep):
                continue
            if dep == step.step_name or dep == step.usid:
                problems.append(
                    Problem(
                        ("STEPS_CONFIG", i, "dependencies", j),
                        f"step {step.step_name!r} depends on itself",
                    )
                )
            elif dep not in first_by_name and not any(
                s.step_name == dep or s.usid == dep for s in steps
            ):
                problems.append(
                    Problem(
                        ("STEPS_CONFIG", i, "dependencies", j),
                        f"step {step.step_name!r} depends on {dep!r}, which is no step in"
                        " STEPS_CONFIG",
                    )
                )
    problems += _cache_problems(run)
    # Duplicate names or usids make the graph ambiguous, so checks that walk it would report
    # noise; every other problem above leaves the graph well defined and is listed with the rest.
    if len(first_by_name) < len(steps) or len(first_by_usid) < len(steps):
        return problems

    graph = DagGraph.build(steps)
    for cycle in graph.find_cycles():
        first = first_by_name[cycle[0]]
        problems.append(
            Problem(
                ("STEPS_CONFIG", first, "dependencies"),
                "dependency cycle: " + " -> ".join([*cycle, cycle[0]]),
            )
        )

    producers: dict[str, str] = {}
    for step in steps:
        for variable in step_variables(step):
            producers.setdefault(variable, step.step_name)
    inputs = {*BASE_VARIABLES, *run.input_data}
    ancestry = graph.ancestry()
    for i, step in enumerate(steps):
        for loc, value in step_templates(step):
            try:
                found = references(value)
            except TemplateError as exc:
                problems.append(
                    Problem(("STEPS_CONFIG", i, *loc), f"step {step.step_name!r}: {exc}")
                )
                continue
            for where, ref in found:
                field_loc = ("STEPS_CONFIG", i, *loc, *([where] if where else []))
                if step.type == "instructions" and ref.root in (*CHILD_ROOTS, SECRETS_ROOT):
                    continue  # the child run's own placeholders
                if step.type in ("llm", "approval") and ref.root == SECRETS_ROOT:
                    problems.append(
                        Problem(
                            field_loc,
                            f"step {step.step_name!r}: secrets are filled in HTTP calls only,"
                            f" never {SECRET_LEAKS[step.type]}",
                        )
                    )
                    continue
                if ref.root == SECRETS_ROOT:
                    # Resolved by the worker when the call is made; only the form is checked.
                    if secret_name(ref.text) is None:
                        problems.append(
                            Problem(
                                field_loc,
                                f"step {step.step_name!r}: {{{{{ref.text}}}}} is not"
                                " {{secrets.NAME}} (NAME: a letter or underscore, then letters,"
                                " digits and underscores)",
                            )
                        )
                    continue
                if ref.root in inputs:
                    continue
                if step.map_over is not None and ref.root in ITEM_ROOTS and loc != ("map_over",):
                    continue
                producer = producers.get(ref.root)
                if producer is None:
                    problems.append(
                        Problem(
                            field_loc,
                            f"step {step.step_name!r}: {{{{{ref.text}}}}} names no variable; known:"
                            f" original_input, input_data, input_data keys, <step>_result,"
                            f" step outputs and secrets.NAME",
                        )
                    )
                elif producer == step.step_name:
                    problems.append(
                        Problem(
                            field_loc,
                            f"step {step.step_name!r}: {{{{{ref.text}}}}} refers to its own output",
                        )
                    )
                elif not ancestry.includes(step.step_name, producer):
                    problems.append(
                        Problem(
                            field_loc,
                            f"step {step.step_name!r}: {{{{{ref.text}}}}} is produced by step"
                            f" {producer!r}, which {step.step_name!r} does not depend on;"
                            f" add {producer!r} to its dependencies",
                        )
                    )
    return problems


class Scheduler:
    """Which steps may start, given what has finished; the workflow owns the I/O.

    A step is ready as soon as every upstream step completed, not level by level. A step
    whose upstream was aborted is aborted too (the cascade); `max_parallel` caps running
    steps. Every operation costs time in proportion to the steps and edges it touches, not to
    the graph's size, so a 10,000-step run is scheduled in linear time overall.
    """

    def __init__(self, graph: DagGraph, max_parallel: int | None = None) -> None:
        self.graph = graph
        self.max_parallel = max_parallel
        self.completed: set[str] = set()
        self.aborted: set[str] = set()
        self.running: set[str] = set()
        self.failed: set[str] = set()
        self._position = {name: index for index, name in enumerate(graph.order)}
        self._downstream = graph.downstream()
        #: Upstream steps each step still waits for.
        self._waiting = {name: len(graph.upstream[name]) for name in graph.order}
        #: Ready steps not yet started, as payload positions (started in payload order).
        self._ready = [self._position[name] for name in graph.order if not self._waiting[name]]
        heapq.heapify(self._ready)
        self._newly_aborted: list[str] = []
        #: Steps a segment will run (`claim`): neither ready nor running until they finish.
        self.claimed: set[str] = set()

    def take_ready(self) -> list[str]:
        """The steps that may start now, in payload order, marked as running."""
        free = None if self.max_parallel is None else self.max_parallel - len(self.running)
        taken: list[str] = []
        while self._ready and (free is None or len(taken) < free):
            name = self.graph.order[heapq.heappop(self._ready)]
            if (
                name in self.aborted
                or name in self.completed
                or name in self.running
                or name in self.claimed
            ):
                continue  # finished by an earlier run of the chain (see `complete`), or claimed
            self.running.add(name)
            taken.append(name)
        return taken

    def claim(self, roots: list[str], eligible: Callable[[str], bool], limit: int) -> list[str]:
        """The steps a segment started from `roots` (just taken) may run as well, at most
        `limit`, all `eligible`: ready steps `take_ready` left for lack of room, then every
        step whose upstream steps are all completed or in the segment.

        Claimed steps are handed out by no `take_ready` until `release`d; they end as steps
        do (`complete`, `fail`, `cancel`). The cost is that of the steps and edges touched
        plus one pass over the ready steps.
        """
        inside = set(roots)
        claimed: list[str] = []

        def free(name: str) -> bool:
            return not (
                name in inside
                or name in self.running
                or name in self.claimed
                or name in self.completed
                or name in self.aborted
                or name in self.failed
            )

        for position in sorted(set(self._ready)):
            name = self.graph.order[position]
            if len(claimed) >= limit:
                break
            if free(name) and eligible(name):
                inside.add(name)
                claimed.append(name)
        queue = deque([*roots, *claimed])
        #: Upstream steps each step reached still waits for, outside the segment.
        needs: dict[str, int] = {}
        while queue and len(claimed) < limit:
            for child in self._downstream[queue.popleft()]:
                if not free(child):
                    continue
                needs[child] = needs.get(child, self._waiting[child]) - 1
                if not needs[child] and eligible(child) and len(claimed) < limit:
                    inside.add(child)
                    claimed.append(child)
                    queue.append(child)
        self.claimed.update(claimed)
        return claimed

    def release(self, name: str) -> None:
        """A claimed step (or a started one) its segment did not run: ready again once its
        upstream steps are all completed."""
        self.claimed.discard(name)
        self.running.discard(name)
        if not self._waiting[name] and name not in self.aborted and name not in self.completed:
            heapq.heappush(self._ready, self._position[name])

    def complete(self, name: str) -> None:
        """`name` completed: this run's step, or one an earlier run of the chain finished."""
        self.running.discard(name)
        self.claimed.discard(name)
        self.completed.add(name)
        for child in self._downstream[name]:
            self._waiting[child] -= 1
            if not self._waiting[child] and child not in self.aborted:
                heapq.heappush(self._ready, self._position[child])

    def fail(self, name: str) -> None:
        self.running.discard(name)
        self.claimed.discard(name)
        self.failed.add(name)

    def cancel(self, name: str) -> None:
        """A running step that was cancelled: it never finished, and nothing below it runs."""
        self.running.discard(name)
        self.claimed.discard(name)

    def abort(self, name: str) -> None:
        """Abort `name` and, below it, every step that has not started (see `cascade_abort`)."""
        self.running.discard(name)
        self.aborted.add(name)
        stack = list(self._downstream[name])
        while stack:
            child = stack.pop()
            if child in self.aborted or child in self.completed or child in self.running:
                continue
            self.aborted.add(child)
            self._newly_aborted.append(child)
            stack.extend(self._downstream[child])

    def cascade_abort(self) -> list[str]:
        """The steps aborted below an aborted one since the last call, in payload order."""
        newly = sorted(self._newly_aborted, key=self._position.__getitem__)
        self._newly_aborted = []
        return newly

    @property
    def pending(self) -> list[str]:
        done = self.completed | self.aborted | self.failed | self.running
        return [name for name in self.graph.order if name not in done]
