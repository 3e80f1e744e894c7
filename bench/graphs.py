"""The benchmark's graphs and the one dependency rule every contender follows.

A graph is `levels` x `width` steps; each step depends on two steps of the level above (one
when the width is 1: a chain). A fan-out is one level of independent steps. Every step is one
HTTP call to the bench target, whose answer takes `?ms=` milliseconds. The engine receives
the graph as a `STEPS_CONFIG`; the bare worker, plain asyncio and Prefect receive the same
list of dicts and start each step when its own dependencies are done.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Shape:
    """One benchmark graph: `levels` x `width` steps of `step_ms` each."""

    name: str
    label: str
    levels: int
    width: int
    step_ms: int

    @property
    def steps(self) -> int:
        return self.levels * self.width

    @property
    def critical_path(self) -> int:
        """Steps one after the other: what the per-step overhead is spread over."""
        return self.levels


#: Every graph shape, in the order the table prints them. `quick` ones run in `--quick`.
SHAPES = [
    Shape("dag3x10", "3 levels x 10", 3, 10, 50),
    Shape("chain10", "chain of 10", 10, 1, 50),
    Shape("single", "single step", 1, 1, 50),
    Shape("chain200", "chain of 200 (echo)", 200, 1, 0),
    Shape("fanout200", "fan-out 200 x 50 ms", 1, 200, 50),
    Shape("fanout1000", "fan-out 1,000 x 50 ms", 1, 1000, 50),
]
QUICK_SKIPS = {"fanout1000"}


def graph(
    levels: int, width: int, target: str, step_ms: int, outputs: bool = True
) -> list[dict[str, Any]]:
    """`levels` x `width` steps; each step depends on two steps of the level above."""
    steps = []
    for level in range(levels):
        for i in range(width):
            deps = []
            if level:
                deps = sorted({f"s{level - 1}_{i}", f"s{level - 1}_{(i + 1) % width}"})
            steps.append(
                {
                    "step_name": f"s{level}_{i}",
                    "usid": f"u{level}_{i}",
                    "service_url": f"{target}/work/s{level}_{i}?ms={step_ms}",
                    "dependencies": deps,
                    "outputs": [f"o{level}_{i}"] if outputs else [],
                    "input_prep_config": {"body": {"level": level}},
                }
            )
    return steps


def shape_graph(shape: Shape, target: str, outputs: bool = True) -> list[dict[str, Any]]:
    return graph(shape.levels, shape.width, target, shape.step_ms, outputs)


#: How many httpx clients the plain-asyncio floor spreads its calls over. httpcore 1.0's
#: connection pool rescans every connection for every queued request whenever one finishes,
#: so one client under a fan-out of 1,000 spends ~10 ms of CPU per call (measured with
#: py-spy on 2 cores: 1,000 calls of 50 ms took 11 s through one pool of 100, 1.3 s over 50
#: clients). The floor is what the calls cost, not that; the engine and the bare worker
#: each make their calls through one client, as a worker does.
FLOOR_CLIENTS = 50


def floor_clients() -> list[httpx.AsyncClient]:
    return [httpx.AsyncClient(timeout=60) for _ in range(FLOOR_CLIENTS)]


async def run_plain(steps: list[dict[str, Any]], clients: Sequence[httpx.AsyncClient]) -> float:
    """The floor: start each step when its dependencies are done, with asyncio + httpx."""
    started = time.perf_counter()
    done: dict[str, asyncio.Task[Any]] = {}

    async def step(config: dict[str, Any], http: httpx.AsyncClient) -> Any:
        await asyncio.gather(*(done[d] for d in config["dependencies"]))
        response = await http.post(config["service_url"], json=config["input_prep_config"]["body"])
        response.raise_for_status()
        return response.json()

    for index, config in enumerate(steps):
        http = clients[index % len(clients)]
        done[config["step_name"]] = asyncio.create_task(step(config, http))
    await asyncio.gather(*done.values())
    return time.perf_counter() - started
