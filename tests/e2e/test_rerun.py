"""`POST /runs/{id}/rerun` through the real gateway, dev server and workers: local targets
count every call, so a reused step is one the target never saw again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from cli.commands import EXIT_USAGE, app
from gateway.app import create_app
from gateway.client import AsyncWorkflowStationClient, NotFound
from tests.conftest import Gateway, Targets, _run_workers, make_settings, unique, wait_until
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.targets import serve


def pipeline(steps: list[dict[str, Any]], mode: str = "durable") -> dict[str, Any]:
    return {
        "workflow_id": unique("rerun"),
        "original_input": {"city": "Lyon"},
        "STEPS_CONFIG": steps,
        "PIPELINE_SETTINGS": {
            "execution": {"mode": mode},
            "error_handling": {"max_retries": 0, "retry_delay": 0.1},
        },
    }


def chain(targets: Targets, key: str, failing: int, length: int = 10) -> list[dict[str, Any]]:
    """`s1` … `s<length>`, each after the one before; `s<failing>` answers 404."""
    steps = []
    for i in range(1, length + 1):
        url = f"{targets.url}/record/{key}-{i}"
        if i == failing:
            url = f"{targets.url}/status/{key}-broken/404"
        step: dict[str, Any] = {"step_name": f"s{i}", "usid": f"u{i}", "service_url": url}
        if i > 1:
            step["dependencies"] = [f"s{i - 1}"]
            step["input_prep_config"] = {"body": {"before": f"{{{{s{i - 1}_result.calls}}}}"}}
        steps.append(step)
    return steps


async def ended(gateway: Gateway, workflow_id: str) -> dict[str, Any]:
    async def status() -> dict[str, Any] | None:
        answer = (await gateway.http.get(f"/runs/{workflow_id}")).json()
        return answer if answer["status"] in ("completed", "failed", "cancelled") else None

    result: dict[str, Any] = await wait_until(status, timeout=60)
    return result


@pytest.mark.parametrize("mode", ["durable", "fast"])
async def test_rerun_with_an_edited_step_reuses_the_eight_before_it(
    gateway: Gateway, targets: Targets, mode: str
):
    key = unique("chain")
    body = pipeline(chain(targets, key, failing=9), mode)
    failed = (await gateway.http.post("/execute", json=body)).json()
    assert failed["status"] == "failed" and failed["error"]["step_name"] == "s9"
    seen = {i: targets.state.calls[f"{key}-{i}"] for i in range(1, 11)}
    assert seen == {**dict.fromkeys(range(1, 9), 1), 9: 0, 10: 0}

    fixed = f"{targets.url}/record/{key}-9"
    response = await gateway.http.post(
        f"/runs/{body['workflow_id']}/rerun", json={"steps": {"s9": {"service_url": fixed}}}
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["workflow_id"] == f"{body['workflow_id']}.rerun-1"
    assert accepted["reused"] == [f"s{i}" for i in range(1, 9)]
    assert accepted["rerun"] == ["s9", "s10"]

    result = await ended(gateway, accepted["workflow_id"])
    assert result["status"] == "completed"
    assert result["rerun_of"] == body["workflow_id"]
    assert result["reuse"] == {
        "steps_reused": 8,
        "calls_saved": 8,
        "tokens_saved": 0,
        "unchanged": [],
    }
    assert result["steps"]["s3"]["reused_from"] == body["workflow_id"]
    assert result["steps"]["s9"]["reused_from"] is None
    assert result["progress"]["completed"] == 10
    calls = {i: targets.state.calls[f"{key}-{i}"] for i in range(1, 11)}
    # Steps 1-8 made no call; the edited step and the one after it made one each.
    assert calls == dict.fromkeys(range(1, 11), 1)
    assert targets.state.calls[f"{key}-broken"] == 1
    # s9 read s8's reused result: s8 answered `calls: 1` in the source run.
    assert targets.state.requests[f"{key}-9"][-1]["json"] == {"before": 1}

    second = await gateway.http.post(f"/runs/{body['workflow_id']}/rerun", json={})
    assert second.json()["workflow_id"] == f"{body['workflow_id']}.rerun-2"
    await ended(gateway, second.json()["workflow_id"])


async def test_rerun_from_a_step_in_a_fan_out_reruns_it_and_its_descendants(
    gateway: Gateway, targets: Targets
):
    key = unique("fan")

    def step(name: str, *after: str) -> dict[str, Any]:
        url = f"{targets.url}/record/{key}-{name}"
        return {
            "step_name": name,
            "usid": f"u-{name}",
            "service_url": url,
            "dependencies": [*after],
        }

    steps = [
        step("root"),
        step("a", "root"),
        step("b", "root"),
        step("c", "root"),
        step("b1", "b"),
        step("b2", "b1"),
        step("join", "a", "b2", "c"),
    ]
    body = pipeline(steps)
    assert (await gateway.http.post("/execute", json=body)).json()["status"] == "completed"

    response = await gateway.http.post(
        f"/runs/{body['workflow_id']}/rerun", json={"from_step": "b"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["rerun"] == ["b", "b1", "b2", "join"]
    assert response.json()["reused"] == ["root", "a", "c"]
    result = await ended(gateway, response.json()["workflow_id"])
    assert result["status"] == "completed"
    calls = {
        name: targets.state.calls[f"{key}-{name}"]
        for name in ["root", "a", "b", "c", "b1", "b2", "join"]
    }
    assert calls == {"root": 1, "a": 1, "c": 1, "b": 2, "b1": 2, "b2": 2, "join": 2}


async def test_rerun_refuses_an_invalid_edit_naming_the_field(gateway: Gateway, targets: Targets):
    key = unique("bad-edit")
    body = pipeline(chain(targets, key, failing=2, length=3))
    await gateway.http.post("/execute", json=body)
    source = body["workflow_id"]

    invalid = await gateway.http.post(
        f"/runs/{source}/rerun", json={"steps": {"s2": {"timeout": -1}}}
    )
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["loc"] == ["body", "STEPS_CONFIG", 1, "timeout"]
    unknown = await gateway.http.post(f"/runs/{source}/rerun", json={"steps": {"nope": {}}})
    assert unknown.status_code == 422 and "nope" in unknown.text
    typo = await gateway.http.post(f"/runs/{source}/rerun", json={"from_stp": "s2"})
    assert typo.status_code == 422
    missing = await gateway.http.post(f"/runs/{unique('none')}/rerun", json={})
    assert missing.status_code == 404


async def test_rerun_saves_an_upstream_llm_steps_tokens(
    llm_gateway: Gateway, fake_llm: FakeLLMServer, targets: Targets
):
    key = unique("llm-chain")
    fake_llm.when("Classify", provider="openai").reply_json({"label": "fruit"}, usage=(7, 3))
    steps = [
        {"step_name": "fetch", "usid": "u-fetch", "service_url": f"{targets.url}/record/{key}"},
        {
            "step_name": "classify",
            "usid": "u-classify",
            "type": "llm",
            "dependencies": ["fetch"],
            "llm": {
                "provider": "openai",
                "model": "gpt-test",
                "prompt": "Classify apples",
                "output_schema": {
                    "type": "object",
                    "properties": {"label": {"type": "string"}},
                    "required": ["label"],
                    "additionalProperties": False,
                },
            },
        },
        {
            "step_name": "file",
            "usid": "u-file",
            "dependencies": ["classify"],
            "service_url": f"{targets.url}/status/{key}-broken/400",
            "input_prep_config": {"body": {"label": "{{classify_result.json.label}}"}},
        },
    ]
    body = pipeline(steps)
    failed = (await llm_gateway.http.post("/execute", json=body)).json()
    assert failed["status"] == "failed" and failed["error"]["http_status"] == 400
    assert len(fake_llm.requests) == 1

    edit = {"file": {"service_url": f"{targets.url}/record/{key}-file"}}
    response = await llm_gateway.http.post(
        f"/runs/{body['workflow_id']}/rerun", json={"steps": edit}
    )
    assert response.status_code == 202, response.text
    assert response.json()["reused"] == ["fetch", "classify"]
    result = await ended(llm_gateway, response.json()["workflow_id"])
    assert result["status"] == "completed", result["error"]
    assert result["reuse"] == {
        "steps_reused": 2,
        "calls_saved": 2,
        "tokens_saved": 10,
        "unchanged": [],
    }
    assert result["usage"] == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": None,
        "by_model": {},
        "unpriced_models": [],
    }
    assert len(fake_llm.requests) == 1  # the model was not asked again
    assert targets.state.calls[key] == 1
    assert targets.state.requests[f"{key}-file"][-1]["json"] == {"label": "fruit"}


async def test_the_cli_reruns_with_an_edit_and_follows_the_rerun(
    gateway: Gateway, targets: Targets
):
    key = unique("cli-rerun")
    body = pipeline(chain(targets, key, failing=3, length=4))
    await gateway.http.post("/execute", json=body)
    env = {"GATEWAY_URL": gateway.url, "COLUMNS": "140"}
    fixed = f"s3.service_url={targets.url}/record/{key}-3"
    args = ["rerun", body["workflow_id"], "--set", fixed, "--set", "s3.timeout=5", "--follow"]

    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)

    assert result.exit_code == 0, result.output
    assert f"started {body['workflow_id']}.rerun-1: reusing 2 step(s), running s3, s4" in (
        result.output
    )
    assert "4/4 steps" in result.output
    assert [targets.state.calls[f"{key}-{i}"] for i in range(1, 5)] == [1, 1, 1, 1]
    refused = await asyncio.to_thread(
        CliRunner().invoke, app, ["rerun", body["workflow_id"], "--set", "s3.timeout=-1"], env=env
    )
    assert refused.exit_code == EXIT_USAGE
    assert "STEPS_CONFIG.2.timeout" in refused.output


async def test_the_typed_client_reruns_from_a_step(gateway: Gateway, targets: Targets):
    key = unique("client-rerun")
    body = pipeline(chain(targets, key, failing=0, length=3))
    async with AsyncWorkflowStationClient(gateway.url) as client:
        await client.run(body)
        started = await client.rerun(
            body["workflow_id"], from_step="s2", workflow_id=unique("mine")
        )
        assert started.reused == ["s1"] and started.rerun == ["s2", "s3"]
        result = await wait_until(lambda: _finished(client, started.workflow_id), timeout=60)
        with pytest.raises(NotFound):
            await client.rerun(unique("none"))
    assert result.rerun_of == body["workflow_id"]
    assert [targets.state.calls[f"{key}-{i}"] for i in range(1, 4)] == [1, 2, 2]


async def _finished(client: AsyncWorkflowStationClient, workflow_id: str) -> Any:
    run = await client.get(workflow_id)
    return run if run.status == "completed" else None


@pytest.fixture
async def small_values_gateway(
    dev_env: WorkflowEnvironment, redis_url: str
) -> AsyncIterator[Gateway]:
    """A gateway and workers that show any value over 1 KiB by reference."""
    settings = make_settings(dev_env.client, redis_url, value_inline_max_bytes=1024)
    async for engine in _run_workers(dev_env.client, settings, []):
        async with (
            serve(create_app(settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=60) as http,
        ):
            yield Gateway(url, http, engine)


async def test_a_reused_value_kept_by_reference_is_referenced_and_read_whole(
    small_values_gateway: Gateway, targets: Targets
):
    gateway = small_values_gateway
    key = unique("big-rerun")
    steps = [
        {
            "step_name": "fetch",
            "usid": "u-fetch",
            "method": "GET",
            "service_url": f"{targets.url}/json/{8 * 1024}",
            "outputs": ["doc"],
        },
        {
            "step_name": "use",
            "usid": "u-use",
            "dependencies": ["fetch"],
            "service_url": f"{targets.url}/status/{key}-broken/400",
            "input_prep_config": {
                "body": {"count": "{{doc.count}}", "last": "{{fetch_result.items[7].n}}"}
            },
        },
    ]
    body = pipeline(steps)
    failed = (await gateway.http.post("/execute", json=body)).json()
    assert failed["error"]["http_status"] == 400
    reference = failed["steps"]["fetch"]["outputs"]["doc"]
    assert reference["$ref"] == f"/runs/{body['workflow_id']}/outputs/doc"

    edit = {"use": {"service_url": f"{targets.url}/record/{key}"}}
    response = await gateway.http.post(f"/runs/{body['workflow_id']}/rerun", json={"steps": edit})
    result = await ended(gateway, response.json()["workflow_id"])

    assert result["status"] == "completed", result["error"]
    # Shown by the source's reference, not copied under the rerun's id...
    assert result["steps"]["fetch"]["outputs"]["doc"] == reference
    assert result["outputs"]["doc"] == reference
    # ...and read whole by the step that templates it.
    assert targets.state.requests[key][-1]["json"] == {"count": 8, "last": 7}


async def test_a_cancelled_run_is_rerun_from_where_it_stopped(gateway: Gateway, targets: Targets):
    key = unique("cancelled")
    steps = chain(targets, key, failing=0, length=3)
    steps[1]["service_url"] = f"{targets.url}/hang/{key}-hang"
    body = pipeline(steps)
    started = await gateway.http.post("/execute?wait=false", json=body)
    assert started.status_code == 202
    await wait_until(lambda: _step_running(gateway, body["workflow_id"], "s2"))
    assert (await gateway.http.post(f"/runs/{body['workflow_id']}/cancel")).status_code == 200
    assert (await ended(gateway, body["workflow_id"]))["status"] == "cancelled"

    edit = {"s2": {"service_url": f"{targets.url}/record/{key}-2"}}
    response = await gateway.http.post(f"/runs/{body['workflow_id']}/rerun", json={"steps": edit})
    assert response.status_code == 202, response.text
    assert response.json()["reused"] == ["s1"]
    result = await ended(gateway, response.json()["workflow_id"])
    assert result["status"] == "completed"
    assert [targets.state.calls[f"{key}-{i}"] for i in range(1, 4)] == [1, 1, 1]


async def _step_running(gateway: Gateway, workflow_id: str, step: str) -> bool:
    status = (await gateway.http.get(f"/runs/{workflow_id}")).json()
    return bool(status["steps"][step]["status"] == "running")


@pytest.mark.parametrize("mode", ["durable", "fast"])
async def test_an_edit_that_leaves_the_request_as_it_was_reuses_the_step(
    gateway: Gateway, targets: Targets, mode: str
):
    key, hook = unique("same"), unique("hook")
    steps = chain(targets, key, failing=0, length=3)
    body = pipeline(steps, mode)
    body["PIPELINE_SETTINGS"]["notifications"] = {"webhook_url": f"{targets.url}/hooks/{hook}"}
    assert (await gateway.http.post("/execute", json=body)).json()["status"] == "completed"

    # A timeout and a trace header change nothing the target sees (the result cache's key
    # ignores them): s2 is taken as it was, and so is s3, whose request it decides.
    same = {"s2": {"timeout": 20, "headers": {"traceparent": f"00-{'1' * 32}-{'2' * 16}-01"}}}
    response = await gateway.http.post(f"/runs/{body['workflow_id']}/rerun", json={"steps": same})
    assert response.status_code == 202, response.text
    assert response.json()["rerun"] == ["s2", "s3"]
    rerun_id = response.json()["workflow_id"]
    result = await ended(gateway, rerun_id)

    assert result["status"] == "completed", result["error"]
    assert result["reuse"] == {
        "steps_reused": 3,
        "calls_saved": 3,
        "tokens_saved": 0,
        "unchanged": ["s2", "s3"],
    }
    assert result["steps"]["s2"]["reused_from"] == body["workflow_id"]
    assert result["progress"]["completed"] == 3
    assert {i: targets.state.calls[f"{key}-{i}"] for i in (1, 2, 3)} == {1: 1, 2: 1, 3: 1}

    # Every step says it completed, reused, on the run's events and its webhook.
    def reused_events(events: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            e["step_name"]: (e["data"]["reused_from"], e["data"]["unchanged"])
            for e in events
            if e["event"] == "step.completed" and e["workflow_id"] == rerun_id
        }

    expected = {
        "s1": (body["workflow_id"], False),
        "s2": (body["workflow_id"], True),
        "s3": (body["workflow_id"], True),
    }
    streamed = (await gateway.http.get(f"/runs/{rerun_id}/events")).text
    lines = [line.removeprefix("data:").strip() for line in streamed.splitlines()]
    events = [json.loads(line) for line in lines if line.startswith('{"event"')]
    assert reused_events(events) == expected

    async def delivered() -> dict[str, Any] | None:
        found = reused_events(targets.state.hooks[hook])
        return found if len(found) == 3 else None

    assert await wait_until(delivered) == expected

    # A body that renders differently is a real change: s2 and s3 call again.
    changed = {"s2": {"input_prep_config": {"body": {"before": "edited"}}}}
    again = await gateway.http.post(f"/runs/{body['workflow_id']}/rerun", json={"steps": changed})
    result = await ended(gateway, again.json()["workflow_id"])

    assert result["reuse"]["unchanged"] == []
    assert {i: targets.state.calls[f"{key}-{i}"] for i in (1, 2, 3)} == {1: 1, 2: 2, 3: 2}


async def test_an_llm_step_edited_without_changing_its_prompt_asks_no_model(
    llm_gateway: Gateway, fake_llm: FakeLLMServer, targets: Targets
):
    fake_llm.when("Summarize", provider="openai").reply("Short.", usage=(9, 1))
    steps = [
        {
            "step_name": "summarize",
            "usid": "u-summarize",
            "type": "llm",
            "llm": {"provider": "openai", "model": "gpt-test", "prompt": "Summarize Lyon"},
        }
    ]
    body = pipeline(steps)
    done = (await llm_gateway.http.post("/execute", json=body)).json()
    assert done["status"] == "completed", done["error"]
    asked = len(fake_llm.requests)

    response = await llm_gateway.http.post(
        f"/runs/{body['workflow_id']}/rerun", json={"steps": {"summarize": {"timeout": 30}}}
    )
    assert response.json()["rerun"] == ["summarize"]
    result = await ended(llm_gateway, response.json()["workflow_id"])

    assert result["reuse"] == {
        "steps_reused": 1,
        "calls_saved": 1,
        "tokens_saved": 10,
        "unchanged": ["summarize"],
    }
    assert result["steps"]["summarize"]["result"]["text"] == "Short."
    assert len(fake_llm.requests) == asked
