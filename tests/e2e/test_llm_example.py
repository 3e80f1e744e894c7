"""`examples/llm_pipeline.json` as `make dev` runs it with no provider key: the demo service
(served here on a free port in place of 8001) and its stand-in LLM under `/llm`, which the
worker's real SDKs call."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from cli.llm_example import llm_example_payload, stand_in_environment
from tests.conftest import _run_workers, make_settings
from tests.fakes.targets import serve


@pytest.fixture
async def demo() -> AsyncIterator[str]:
    from examples.demo_service import app

    async with serve(app) as url:
        yield url


async def test_the_llm_example_runs_offline_against_the_stand_in(
    dev_env: WorkflowEnvironment, redis_url: str, demo: str
):
    from gateway.app import create_app

    settings = make_settings(dev_env.client, redis_url)
    # What `make dev` gives the worker when no provider is configured, at this demo's port.
    stand_in = {
        name.lower(): value.replace(f":{settings.demo_port}/", f":{demo.rsplit(':', 1)[1]}/")
        for name, value in stand_in_environment(settings).items()
    }
    assert set(stand_in) == {"openai_base_url", "anthropic_base_url"}
    settings = make_settings(dev_env.client, redis_url, **stand_in)
    payload = json.loads(
        json.dumps(llm_example_payload(settings)).replace("http://127.0.0.1:8001", demo)
    )
    workers = _run_workers(dev_env.client, settings, [])
    await anext(workers)
    try:
        async with (
            serve(create_app(settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=120) as http,
        ):
            response = await http.post("/execute", json=payload)
    finally:
        await workers.aclose()
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "completed", run["error"]
    assert [step["type"] for step in run["steps"].values()] == [
        "http",
        "llm",
        "instructions",
        "http",
    ]
    # The stand-in answers the schema with its first enum value and empty lists.
    assert run["outputs"]["classify"]["json"] == {"mostly": "fruit", "fruit": [], "vegetables": []}
    advice = run["outputs"]["advice"]["output"]
    assert advice.startswith("gpt-5-nano: ")
    assert run["outputs"]["summary"]["report"] == {
        "items": ["apple", "carrot", "pear", "spinach", "banana", "leek"],
        "mostly": "fruit",
        "dish": advice,
    }
    steps = run["steps"]
    billed = [steps[name]["usage"] for name in ("classify", "advise")]
    assert run["usage"] == {
        "input_tokens": sum(usage["input_tokens"] for usage in billed),
        "output_tokens": sum(usage["output_tokens"] for usage in billed),
    }
    assert run["usage"]["input_tokens"] > 0


def test_a_configured_provider_needs_no_stand_in(dev_env: WorkflowEnvironment, redis_url: str):
    settings = make_settings(dev_env.client, redis_url, anthropic_api_key="sk-ant-x")
    assert stand_in_environment(settings) == {}
    payload = llm_example_payload(settings)
    classify = payload["STEPS_CONFIG"][1]["llm"]
    assert (classify["provider"], classify["model"]) == ("anthropic", "claude-haiku-4-5")
