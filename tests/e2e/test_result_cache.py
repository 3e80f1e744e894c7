"""The result cache (`PIPELINE_SETTINGS.cache`) through `POST /execute`: the real gateway,
dev server, workers and Redis, and local targets that count their calls."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from tests.conftest import Engine, Gateway, Targets, unique
from tests.e2e.test_tenancy import ACME, BETA, auth, keyed
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.targets import serve


def pipeline(
    targets: Targets, key: str, city: str, *, mode: str = "durable", ttl: int = 600
) -> dict[str, Any]:
    """`fetch` (cached) posts `city` to the counting target; `after` (not cached) reads it."""
    return {
        "workflow_id": unique("cache"),
        "original_input": {"city": city},
        "STEPS_CONFIG": [
            {
                "step_name": "fetch",
                "usid": "u-fetch",
                "service_url": f"{targets.url}/record/{key}",
                "input_prep_config": {"body": {"city": "{{original_input.city}}"}},
            },
            {
                "step_name": "after",
                "usid": "u-after",
                "service_url": f"{targets.url}/record/{key}-after",
                "dependencies": ["fetch"],
            },
        ],
        "PIPELINE_SETTINGS": {
            "execution": {"mode": mode},
            "cache": {"ttl_seconds": ttl, "steps": ["fetch"]},
        },
    }


async def execute(http: httpx.AsyncClient, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    response = await http.post("/execute", json=body, **kwargs)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "completed", result
    return result


@pytest.mark.parametrize("mode", ["durable", "fast"])
async def test_same_request_is_a_hit_and_a_changed_body_a_miss(
    gateway: Gateway, targets: Targets, mode: str
):
    key = unique("cached")
    first = await execute(gateway.http, pipeline(targets, key, "Lyon", mode=mode))
    assert first["steps"]["fetch"]["cached"] is False
    assert targets.state.calls[key] == 1

    # Another run, another idempotency key, the same rendered request: no call.
    second = await execute(gateway.http, pipeline(targets, key, "Lyon", mode=mode))
    fetch = second["steps"]["fetch"]
    assert fetch["cached"] is True and fetch["cache_age_seconds"] >= 0
    assert fetch["result"] == first["steps"]["fetch"]["result"]
    assert targets.state.calls[key] == 1
    assert second["cache"] == {"hits": 1, "tokens_saved": 0}
    # Steps not named in `cache.steps` call every time.
    assert second["steps"]["after"]["cached"] is False
    assert targets.state.calls[f"{key}-after"] == 2

    third = await execute(gateway.http, pipeline(targets, key, "Paris", mode=mode))
    assert third["steps"]["fetch"]["cached"] is False
    assert targets.state.calls[key] == 2
    assert targets.state.requests[key][-1]["json"] == {"city": "Paris"}


async def test_tenants_never_share_an_entry(dev_engine: Engine, targets: Targets):
    key = unique("tenants")
    async with (
        serve(create_app(keyed(dev_engine))) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as http,
    ):
        acme = await execute(http, pipeline(targets, key, "Lyon"), headers=auth(ACME))
        beta = await execute(http, pipeline(targets, key, "Lyon"), headers=auth(BETA))
        assert acme["steps"]["fetch"]["cached"] is False
        assert beta["steps"]["fetch"]["cached"] is False
        assert targets.state.calls[key] == 2
        again = await execute(http, pipeline(targets, key, "Lyon"), headers=auth(BETA))
        assert again["steps"]["fetch"]["cached"] is True
        assert targets.state.calls[key] == 2


async def test_an_expired_entry_is_a_miss(gateway: Gateway, targets: Targets):
    key = unique("expired")
    await execute(gateway.http, pipeline(targets, key, "Lyon", ttl=1))
    # Redis expires the entry after its TTL.
    await asyncio.sleep(1.5)
    later = await execute(gateway.http, pipeline(targets, key, "Lyon", ttl=1))
    assert later["steps"]["fetch"]["cached"] is False
    assert targets.state.calls[key] == 2


async def test_cache_steps_must_name_cacheable_steps(gateway: Gateway, targets: Targets):
    body = pipeline(targets, unique("invalid"), "Lyon")
    body["PIPELINE_SETTINGS"]["cache"]["steps"] = ["fetch", "fecth"]
    response = await gateway.http.post("/execute", json=body)
    assert response.status_code == 422
    problems = {tuple(p["loc"]): p["msg"] for p in response.json()["detail"]}
    assert "'fecth'" in problems[("body", "PIPELINE_SETTINGS", "cache", "steps", 1)]
    assert len(problems) == 1


def llm_pipeline(city: str) -> dict[str, Any]:
    return {
        "workflow_id": unique("cache-llm"),
        "original_input": {"city": city},
        "STEPS_CONFIG": [
            {
                "step_name": "describe",
                "usid": "u-describe",
                "type": "llm",
                "llm": {
                    "provider": "openai",
                    "model": "gpt-test",
                    "prompt": "Describe {{original_input.city}} in one word.",
                    "max_tokens": 20,
                },
            }
        ],
        "PIPELINE_SETTINGS": {"cache": {"ttl_seconds": 600, "llm": True}},
    }


async def test_an_llm_step_hit_asks_no_model(llm_gateway: Gateway, fake_llm: FakeLLMServer):
    # Unique per test run: entries of earlier sessions may still be in Redis.
    city = unique("city")
    fake_llm.when(f"Describe {city}", provider="openai").reply("Lovely.", usage=(6, 2), times=5)
    first = await execute(llm_gateway.http, llm_pipeline(city))
    assert first["steps"]["describe"]["cached"] is False
    assert first["usage"]["input_tokens"] == 6
    assert len(fake_llm.requests) == 1

    second = await execute(llm_gateway.http, llm_pipeline(city))
    describe = second["steps"]["describe"]
    assert describe["cached"] is True and describe["cache_age_seconds"] >= 0
    assert describe["result"]["text"] == "Lovely."
    # Nothing was billed for it.
    assert describe["result"]["usage"] == {"input_tokens": 0, "output_tokens": 0}
    assert second["usage"]["input_tokens"] == 0
    # What it saved: the tokens the answer had billed when it was made.
    assert second["cache"] == {"hits": 1, "tokens_saved": 8}
    assert first["cache"] is None
    assert len(fake_llm.requests) == 1
