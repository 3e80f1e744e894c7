"""`examples/llm_pipeline.json` as `make dev` runs it with no provider key: the demo service
(served here on a free port in place of 8001) and its stand-in LLM under `/llm`, which the
worker's real SDKs call, and what `make dev` prints of it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from cli.examples import llm_example_payload, run_llm_example, stand_in_environment
from gateway.client import WorkflowStationClient
from settings import Settings
from tests.conftest import _run_workers, make_settings
from tests.fakes.targets import free_port, serve


def run_llm_example_at(settings: Settings, url: str) -> bool:
    with WorkflowStationClient(url, timeout=60) as client:
        return run_llm_example(settings, client)


async def test_the_llm_example_runs_offline_against_the_stand_in(
    dev_env: WorkflowEnvironment,
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
):
    from examples.demo_service import app as demo_app
    from gateway.app import create_app

    ports = {"demo_port": free_port(), "gateway_port": free_port()}
    # A data directory of its own: no `make dev` key on this machine changes what it prints.
    settings = make_settings(dev_env.client, redis_url, data_dir=str(tmp_path), **ports)
    # What `make dev` gives the worker when no provider is configured.
    stand_in = {name.lower(): value for name, value in stand_in_environment(settings).items()}
    assert set(stand_in) == {"openai_base_url", "anthropic_base_url"}
    worker_settings = settings.model_copy(update=stand_in)
    workers = _run_workers(dev_env.client, worker_settings, [])
    await anext(workers)
    try:
        async with (
            serve(demo_app, ports["demo_port"]),
            serve(create_app(settings), ports["gateway_port"]) as url,
            httpx.AsyncClient(base_url=url, timeout=60) as http,
        ):
            completed = await asyncio.to_thread(run_llm_example_at, settings, url)
            printed = capsys.readouterr().out
            workflow_id = re.search(r"/workflows/(\S+)", printed)
            assert workflow_id is not None, printed
            run = (await http.get(f"/runs/{workflow_id[1]}")).json()
    finally:
        await workers.aclose()
    assert completed, printed
    assert "no LLM provider key set: the stand-in LLM in the demo service answers" in printed
    assert re.search(r"- classify +llm +completed +openai/gpt-5-nano tokens=\d+\+\d+", printed)
    assert "advice.output = gpt-5-nano: " in printed
    # Priced by the shipped table as gpt-5-nano's calls.
    assert re.search(r"run tokens: \d+ in / \d+ out, cost \$0\.\d{6}", printed)

    assert [step["type"] for step in run["steps"].values()] == [
        "http",
        "llm",
        "instructions",
        "http",
    ]
    # The stand-in answers the schema with its first enum value and empty lists.
    assert run["outputs"]["classify"]["json"] == {"mostly": "fruit", "fruit": [], "vegetables": []}
    advice = run["outputs"]["advice"]["output"]
    assert run["outputs"]["summary"]["report"] == {
        "items": ["apple", "carrot", "pear", "spinach", "banana", "leek"],
        "mostly": "fruit",
        "dish": advice,
    }
    billed = [run["steps"][name]["usage"] for name in ("classify", "advise")]
    tokens = {key: run["usage"][key] for key in ("input_tokens", "output_tokens")}
    assert tokens == {
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
