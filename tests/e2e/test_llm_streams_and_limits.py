"""Streamed `llm` steps and rate-limited ones through `POST /execute`: the real gateway, dev
server and workers, the real SDKs against the fake LLM server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.conftest import (
    Engine,
    Gateway,
    _run_workers,
    llm_settings,
    make_settings,
    unique,
)
from tests.e2e.test_live_events import read_stream
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.targets import serve

ANSWERS = {
    "openai": " ".join(f"alpha{i}" for i in range(30)),
    "anthropic": " ".join(f"beta{i}" for i in range(30)),
}


def streamed_pipeline() -> dict[str, Any]:
    return {
        "workflow_id": unique("streamed"),
        "STEPS_CONFIG": [
            {
                "step_name": provider,
                "usid": f"u-{provider}",
                "type": "llm",
                "llm": {
                    "provider": provider,
                    "model": f"{provider}-streamer",
                    "prompt": f"Write for {provider}",
                    "stream": True,
                },
            }
            for provider in ANSWERS
        ],
        "PIPELINE_SETTINGS": {"error_handling": {"max_retries": 0}},
    }


def deltas_by_step(messages: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        if message.get("event") == "step.delta":
            found.setdefault(message["data"]["step_name"], []).append(message)
    return found


async def test_deltas_arrive_in_order_and_add_up_to_each_steps_text(
    llm_gateway: Gateway, fake_llm: FakeLLMServer
) -> None:
    for provider, answer in ANSWERS.items():
        fake_llm.when(f"Write for {provider}").reply(answer)
    body = streamed_pipeline()
    started = await llm_gateway.http.post("/execute?wait=false", json=body)
    assert started.status_code == 202, started.text
    path = f"/runs/{body['workflow_id']}/events"
    messages = await read_stream(llm_gateway.http, path)
    assert messages[-1]["event"] == "end"
    run = (await llm_gateway.http.get(f"/runs/{body['workflow_id']}")).json()
    assert run["status"] == "completed", run
    deltas = deltas_by_step(messages)
    for provider, answer in ANSWERS.items():
        chunks = deltas[provider]
        assert [chunk["data"]["index"] for chunk in chunks] == list(range(30))
        text = "".join(chunk["data"]["delta"] for chunk in chunks)
        assert text == answer == run["steps"][provider]["result"]["text"]
        assert all(chunk["data"]["workflow_id"] == body["workflow_id"] for chunk in chunks)
    # Every id after the first chunk holds both places, and they only grow.
    ids = [m["id"] for m in messages if m.get("id")]
    places = [(int(i.split(":")[0]), i.partition(":")[2]) for i in ids]
    assert places == sorted(
        places, key=lambda p: (p[0], tuple(map(int, (p[1] or "0-0").split("-"))))
    )
    assert len(set(ids)) == len(ids)

    # Resumed from the middle of a stream: every later event, chunks included, none missed.
    middle = deltas["openai"][12]
    resumed = await read_stream(llm_gateway.http, path, headers={"Last-Event-ID": middle["id"]})
    position = next(i for i, m in enumerate(messages) if m.get("id") == middle["id"])
    later = [m for m in messages[position + 1 :] if m.get("id")]
    assert [m["id"] for m in resumed if m.get("id")] == [m["id"] for m in later]
    resumed_text = "".join(
        m["data"]["delta"]
        for m in resumed
        if m["event"] == "step.delta" and m["data"]["step_name"] == "openai"
    )
    assert ANSWERS["openai"].endswith(resumed_text) and len(resumed_text) < len(ANSWERS["openai"])
    # History keeps the final answer only: no chunk is a workflow event.
    history = [m for m in messages if m["event"].startswith("step.") and m["event"] != "step.delta"]
    assert all("delta" not in m["data"] for m in history)


async def test_a_last_event_id_this_stream_never_sent_is_refused(
    llm_gateway: Gateway, fake_llm: FakeLLMServer
) -> None:
    body = streamed_pipeline()
    fake_llm.reply("x", times=2)
    await llm_gateway.http.post("/execute", json=body)
    answer = await llm_gateway.http.get(
        f"/runs/{body['workflow_id']}/events", headers={"Last-Event-ID": "12:soon"}
    )
    assert answer.status_code == 422
    assert "Last-Event-ID" in answer.text


@pytest.fixture
async def limited_gateway(
    dev_env: WorkflowEnvironment, redis_url: str, fake_llm: FakeLLMServer
) -> AsyncIterator[Gateway]:
    """Workers that know `slow-model` takes 20 requests a minute: one every ~3.2 s."""
    settings = make_settings(
        dev_env.client,
        redis_url,
        **llm_settings(fake_llm),
        llm_rate_limits={"openai:slow-model": {"requests_per_minute": 20}},
    )
    from gateway.app import create_app

    engine: Engine
    async for engine in _run_workers(dev_env.client, settings, []):
        async with (
            serve(create_app(settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=60) as http,
        ):
            yield Gateway(url, http, engine)


async def test_the_wait_for_a_slot_is_not_counted_against_the_step_timeout(
    limited_gateway: Gateway, fake_llm: FakeLLMServer
) -> None:
    model = unique("slow-model")
    # The limit is for `slow-model`; this run's own model name keeps other runs out of it.
    fake_llm.reply("fine", times=3)
    steps = [
        {
            "step_name": f"ask{index}",
            "usid": f"u-ask{index}",
            "type": "llm",
            "llm": {"provider": "openai", "model": "slow-model", "prompt": f"{model} {index}"},
        }
        for index in range(3)
    ]
    body = {
        "workflow_id": unique("limited"),
        "STEPS_CONFIG": steps,
        "PIPELINE_SETTINGS": {
            "error_handling": {"max_retries": 0},
            "timeouts": {"step_timeout": 2},
        },
    }
    answer = await limited_gateway.http.post("/execute", json=body)
    run = answer.json()
    assert run["status"] == "completed", json.dumps(run)[:2000]
    waits = sorted(step["result"]["rate_limit_wait_seconds"] for step in run["steps"].values())
    # Two calls waited longer than the step's timeout, and each still answered at once.
    assert waits[0] < 2 < waits[1] < waits[2]
    assert all(step["attempts"] == 1 for step in run["steps"].values())
    assert fake_llm.limits.rejected == 0
