"""How the scanners and validators scale on hostile and large inputs: linear, or not.

Each case runs on an input of size n and of size 4n, in this run; a linear algorithm takes
about 4x as long on the larger one, a quadratic one about 16x. The unit tests check what
these functions answer on the same inputs; how long they take is measured here, never
asserted in a test (a loaded machine would fail it).

    .venv/bin/python bench/hostile_inputs.py            # the table
    .venv/bin/python bench/hostile_inputs.py --repeat 5
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernel.answers import json_object  # noqa: E402
from kernel.limits import raw_json_too_deep  # noqa: E402
from workflows.dag.graph import DagGraph, Scheduler, validate_pipeline  # noqa: E402
from workflows.dag.models import DagRunInput, StepConfig  # noqa: E402
from workflows.instructions.conditions import evaluate, parse  # noqa: E402
from workflows.shared.templating import Renderer, TemplateError, references  # noqa: E402

#: Size of the larger input relative to the smaller: a linear case's time ratio.
SCALE = 4


def _chain(n: int) -> DagRunInput:
    steps: list[dict[str, Any]] = [
        {
            "step_name": f"s{i}",
            "usid": f"u{i}",
            "service_url": "https://example.com/x",
            "dependencies": [f"s{i - 1}"] if i else [],
            "outputs": [f"o{i}"],
            "input_prep_config": {"body": {"first": "{{o0}}"} if i else {}},
        }
        for i in range(n)
    ]
    return DagRunInput.model_validate({"workflow_id": "w", "STEPS_CONFIG": steps})


def _schedule_fan_out(n: int) -> Callable[[], object]:
    steps = [StepConfig(step_name="root", usid="u-root", service_url="https://example.com/x")]
    steps += [
        StepConfig(
            step_name=f"s{i}",
            usid=f"u{i}",
            service_url="https://example.com/x",
            dependencies=["root"],
        )
        for i in range(n)
    ]
    graph = DagGraph.build(steps)

    def run() -> object:
        scheduler = Scheduler(graph, max_parallel=500)
        scheduler.take_ready()
        scheduler.complete("root")
        while batch := scheduler.take_ready():
            for name in batch:
                scheduler.complete(name)
        return None

    return run


def _render_past_budget(n: int) -> Callable[[], object]:
    renderer = Renderer({"big": "x" * 100_000}, max_chars=n * 100)

    def run() -> object:
        try:
            renderer.render({"body": ["{{big}}"] * 1_000})
        except TemplateError:
            pass
        return None

    return run


@dataclass(frozen=True)
class Case:
    """One function on one kind of input; `prepare(n)` builds what is timed for size n."""

    name: str
    size: int
    prepare: Callable[[int], Callable[[], object]]


def _call(
    function: Callable[[Any], object], make: Callable[[int], Any]
) -> Callable[[int], Callable[[], object]]:
    """`function` on the input `make(n)` builds, the input built before the timing starts."""

    def prepare(n: int) -> Callable[[], object]:
        value = make(n)
        return lambda: function(value)

    return prepare


def _matches(text: str) -> object:
    return evaluate(parse("result matches /(a+)+$/"), text)


CASES = [
    Case("unclosed code fence", 200_000, _call(json_object, lambda n: "```" + " " * n)),
    Case(
        "regex (a+)+$ on a...ab (RE2)",
        50_000,
        _call(
            lambda text: evaluate(parse("result matches /(a+)+$/"), text), lambda n: "a" * n + "b"
        ),
    ),
    Case(
        "template scan '{{' + spaces", 100_000, _call(references, lambda n: {"h": "{{" + " " * n})
    ),
    Case("template scan '{' x n", 100_000, _call(references, lambda n: {"h": "{" * n})),
    Case("template scan '{{}' x n", 30_000, _call(references, lambda n: {"h": "{{}" * n})),
    Case("render stops at its budget", 1_000_000, lambda n: _render_past_budget(n // 100)),
    Case("JSON depth scan '[]' x n", 500_000, _call(raw_json_too_deep, lambda n: b"[]" * n)),
    Case("JSON depth scan '[' x n", 1_000_000, _call(raw_json_too_deep, lambda n: b"[" * n)),
    Case("JSON depth scan escapes", 300_000, _call(raw_json_too_deep, lambda n: b'"\\\\' * n)),
    Case("validate a chain of n steps", 2_500, _call(validate_pipeline, _chain)),
    Case("schedule a fan-out of n steps", 5_000, _schedule_fan_out),
]


def best_of(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the best counts")
    args = parser.parse_args()
    print(f"| case | n | time at n | time at {SCALE}n | ratio (linear ≈ {SCALE}) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for case in CASES:
        small = best_of(case.prepare(case.size), args.repeat)
        large = best_of(case.prepare(case.size * SCALE), args.repeat)
        ratio = large / small if small else float("inf")
        print(
            f"| {case.name} | {case.size:,} | {small * 1000:.2f} ms | {large * 1000:.2f} ms"
            f" | {ratio:.1f}x |"
        )


if __name__ == "__main__":
    main()
