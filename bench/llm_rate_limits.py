"""A fan-out of `llm` steps against a provider that limits the key, with and without the
rate limiter (`activities/llm/ratelimit.py`), through `POST /execute` on a stack of its own.

    .venv/bin/python bench/llm_rate_limits.py            # --steps 1000 --rpm 600

The fake OpenAI API (`tests/fakes/llm_server.py`, in this process) accepts at most `--rpm`
requests of the key in any 60 seconds (a sliding window) and answers 429 with `retry-after`
past it. One pipeline of `--steps` independent `llm` steps runs twice, each time on a fresh
stack: with `LLM_RATE_LIMITER=false` (the baseline: calls go as fast as the workers send them
and Temporal retries the 429s, honouring `retry-after`), then with the limiter and the limit
configured (`LLM_RATE_LIMITS`). For each it prints the wall time of the run, the rate of
accepted calls against the limit (from the first call to the last, per minute), the calls
answered 429 (and their share of every request sent), and the steps that failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowExecutionStatus

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import bench_stack  # noqa: E402

from tests.fakes.llm_server import FakeLLMServer  # noqa: E402

MODEL = "gpt-bench"
API_KEY = "sk-bench"


@dataclass(frozen=True)
class Row:
    name: str
    wall_seconds: float
    accepted_per_minute: float
    refused: int
    requests: int
    failed_steps: int


def pipeline(steps: int) -> dict[str, Any]:
    return {
        "workflow_id": f"llm-fan-out-{uuid.uuid4().hex[:8]}",
        "STEPS_CONFIG": [
            {
                "step_name": f"ask{index}",
                "usid": f"u-ask{index}",
                "type": "llm",
                "llm": {
                    "provider": "openai",
                    "model": MODEL,
                    "prompt": f"Say something about item {index}.",
                    "max_tokens": 16,
                },
            }
            for index in range(steps)
        ],
        "PIPELINE_SETTINGS": {
            # Enough retries, with retry-after honoured, that the baseline finishes too.
            "error_handling": {"max_retries": 20, "retry_delay": 1},
            "timeouts": {"step_timeout": 60},
        },
    }


async def run_fan_out(gateway_url: str, address: str, steps: int) -> tuple[float, int]:
    """The run's wall time, from its start to its end, and how many of its steps failed."""
    client = await Client.connect(address)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=120) as gateway:
        body = pipeline(steps)
        began = time.monotonic()
        started = await gateway.post("/execute?wait=false", json=body)
        if started.status_code != 202:
            raise RuntimeError(f"{started.status_code}: {started.text[:500]}")
        # Described, not awaited: a run this large keeps its result behind a reference.
        handle = client.get_workflow_handle(body["workflow_id"])
        while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await asyncio.sleep(0.25)
        took = time.monotonic() - began
        status = (await gateway.get(f"/runs/{body['workflow_id']}")).json()
    failed = sum(1 for step in status["steps"].values() if step.get("status") != "completed")
    return took, failed


def measure(name: str, fake: FakeLLMServer, env: dict[str, str], steps: int, rpm: int) -> Row:
    fake.reset()
    fake.limit(requests_per_minute=rpm, window_seconds=60)
    with bench_stack(env) as stack:
        took, failed = asyncio.run(run_fan_out(stack.gateway_url, stack.temporal_address, steps))
    accepted = fake.limits.accepted_at
    span = accepted[-1] - accepted[0] if len(accepted) > 1 else 0.0
    return Row(
        name,
        took,
        (len(accepted) - 1) / span * 60 if span else 0.0,
        fake.limits.rejected,
        len(fake.requests),
        failed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rpm", type=int, default=600)
    args = parser.parse_args()
    with FakeLLMServer() as fake:
        common = {
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": fake.base_url_openai,
            "LLM_STEP_TIMEOUT_SECONDS": "60",
        }
        rows = [
            measure(
                "without limiter",
                fake,
                {**common, "LLM_RATE_LIMITER": "false"},
                args.steps,
                args.rpm,
            ),
            measure(
                "with limiter",
                fake,
                {
                    **common,
                    "LLM_RATE_LIMITER": "true",
                    "LLM_RATE_LIMITS": json.dumps(
                        {f"openai:{MODEL}": {"requests_per_minute": args.rpm}}
                    ),
                },
                args.steps,
                args.rpm,
            ),
        ]
    print(
        f"\n{args.steps} llm steps in one fan-out, the key limited to {args.rpm} requests a"
        " minute (sliding window, 429 past it)\n"
    )
    header = (
        f"{'':<17}{'wall s':>8}{'accepted/min':>14}{'of limit':>10}{'429s':>7}"
        f"{'429 share':>11}{'failed steps':>14}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        share = row.refused / row.requests if row.requests else 0.0
        print(
            f"{row.name:<17}{row.wall_seconds:>8.1f}{row.accepted_per_minute:>14.0f}"
            f"{row.accepted_per_minute / args.rpm:>10.0%}{row.refused:>7}{share:>11.1%}"
            f"{row.failed_steps:>14}"
        )


if __name__ == "__main__":
    main()
