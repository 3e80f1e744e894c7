"""Payload encryption through the whole stack: Temporal holds ciphertext, the codec endpoint
shows it to who may see it, and a key rotation leaves runs in flight able to finish."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.store.models import fresh_key, status_key
from cli.stack import BIN, temporal_command
from gateway.app import create_app
from kernel.codec import KEY_ID_METADATA, SEALED_PREFIX
from settings import Settings, connect_temporal
from tests.conftest import Targets, _run_workers, make_settings, unique, wait_until
from tests.e2e.test_secrets import history_text
from tests.fakes.targets import serve
from workflows.dag.models import DagRunResult

TOKEN = f"tok-{uuid.uuid4().hex}"
CODEC_TOKEN = f"codec-{uuid.uuid4().hex}"


def key_entry(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


K1, K2 = key_entry("k1"), key_entry("k2")


@dataclass
class Stack:
    url: str
    http: httpx.AsyncClient
    client: Client
    settings: Settings


@pytest.fixture
async def encrypted(dev_env: WorkflowEnvironment, redis_url: str) -> AsyncIterator[Stack]:
    """Workers and the gateway with PAYLOAD_ENCRYPTION_KEY and CODEC_AUTH_TOKEN set."""
    settings = make_settings(
        dev_env.client,
        redis_url,
        payload_encryption_key=SecretStr(K1),
        codec_auth_token=SecretStr(CODEC_TOKEN),
    )
    client = await connect_temporal(settings)
    async for _ in _run_workers(client, settings, []):
        async with (
            serve(create_app(settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=60) as http,
        ):
            yield Stack(url, http, client, settings)


def pipeline(targets: Targets, **fields: Any) -> dict[str, Any]:
    return {
        "workflow_id": unique("enc"),
        "namespace": "acme",
        "input_data": {"token": TOKEN},
        "STEPS_CONFIG": [
            {
                "step_name": "call",
                "usid": "u1",
                "service_url": f"{targets.url}/record/{unique('enc')}",
                "headers": {"Authorization": "Bearer {{input_data.token}}"},
            }
        ],
        **fields,
    }


async def temporal_cli(*args: str) -> str:
    # Not subprocess.run: the gateway the CLI calls is served by this very event loop.
    process = await asyncio.create_subprocess_exec(
        str(BIN / "temporal"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_the_history_holds_ciphertext_and_the_codec_endpoint_reads_it(
    encrypted: Stack, targets: Targets
):
    body = pipeline(targets)
    response = await encrypted.http.post("/execute", json=body)
    assert response.status_code == 200 and response.json()["status"] == "completed"

    address = encrypted.settings.effective_temporal_address
    show = ["workflow", "show", "-w", body["workflow_id"], "--address", address, "-o", "json"]
    plain = await temporal_cli(*show)
    assert "binary/encrypted" in history_text_of(plain)
    assert TOKEN not in history_text_of(plain)

    through_codec = await temporal_cli(
        *show,
        "--codec-endpoint",
        f"{encrypted.url}/codec",
        "--codec-auth",
        f"Bearer {CODEC_TOKEN}",
    )
    assert TOKEN in history_text_of(through_codec)

    # The same through the endpoint directly, as the Web UI calls it.
    history = await encrypted.client.get_workflow_handle(body["workflow_id"]).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    payloads = [
        {
            "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
            "data": base64.b64encode(p.data).decode(),
        }
        for p in started.input.payloads
    ]
    assert payloads[0]["metadata"]["encoding"] == base64.b64encode(b"binary/encrypted").decode()
    decoded = await encrypted.http.post(
        "/codec/decode",
        json={"payloads": payloads},
        headers={"Authorization": f"Bearer {CODEC_TOKEN}", "X-Namespace": "default"},
    )
    assert decoded.status_code == 200, decoded.text
    [answer] = decoded.json()["payloads"]
    assert base64.b64decode(answer["metadata"]["encoding"]) == b"json/plain"
    assert TOKEN in base64.b64decode(answer["data"]).decode()

    encoded = await encrypted.http.post(
        "/codec/encode",
        json={"payloads": [answer]},
        headers={"Authorization": f"Bearer {CODEC_TOKEN}"},
    )
    [sealed] = encoded.json()["payloads"]
    assert base64.b64decode(sealed["metadata"][KEY_ID_METADATA]) == b"k1"
    assert TOKEN not in base64.b64decode(sealed["data"]).decode("utf-8", "replace")


def history_text_of(cli_json: str) -> str:
    """The CLI's JSON, with every base64 string in it decoded too."""
    from temporalio.client import WorkflowHistory

    return history_text(WorkflowHistory.from_json("w", cli_json))


async def test_redis_and_history_hold_no_plain_output_or_failure_message(
    encrypted: Stack, targets: Targets, redis_url: str
):
    """Outputs and large results in Redis are sealed, failure messages in history encoded;
    the gateway still answers them in the clear."""
    marker = f"plain-{uuid.uuid4().hex}"
    body = {
        "workflow_id": unique("enc"),
        "namespace": "acme",
        "STEPS_CONFIG": [
            {
                "step_name": "echo",
                "usid": "u1",
                "service_url": f"{targets.url}/echo/{unique('enc')}?m={marker}",
                "outputs": ["answer"],
            },
            {
                # Over VALUE_INLINE_MAX_BYTES: its result lives in Redis, behind a `$ref`.
                "step_name": "large",
                "usid": "u2",
                "service_url": f"{targets.url}/json/{100_000}",
                "method": "GET",
            },
            {
                "step_name": "refused",
                "usid": "u3",
                "dependencies": ["echo", "large"],
                "service_url": f"{targets.url}/reflect/400?m={marker}",
            },
        ],
    }
    workflow_id = body["workflow_id"]
    response = await encrypted.http.post("/execute", json=body)
    assert response.status_code == 200, response.text
    steps = response.json()["steps"]
    assert steps["echo"]["status"] == steps["large"]["status"] == "completed"
    error = steps["refused"]["error"]
    assert "answered 400" in error["message"] and marker in error["message"]

    raw = Redis.from_url(redis_url)  # bytes, as they are stored
    try:
        stored = {key: await raw.get(key) for key in await raw.keys(f"acme:{workflow_id}:*")}
    finally:
        await raw.aclose()
    assert len(stored) == 2, sorted(stored)  # the output, and the large result
    for value in stored.values():
        assert value.startswith(SEALED_PREFIX)
        assert marker.encode() not in value and b"xxxxxxxx" not in value

    output = await encrypted.http.get(f"/runs/{workflow_id}/outputs/answer")
    assert output.status_code == 200 and marker in output.text
    result = await encrypted.http.get(f"/runs/{workflow_id}/steps/large/result")
    assert result.status_code == 200 and result.json()["count"] == 97

    history = await encrypted.client.get_workflow_handle(workflow_id).fetch_history()
    recorded = history_text(history)
    assert "Encoded failure" in recorded
    assert marker not in recorded and "answered 400" not in recorded

    # The Web UI reads the message through the codec endpoint, as it reads payloads.
    [failed] = [e for e in history.events if e.HasField("activity_task_failed_event_attributes")]
    encoded = failed.activity_task_failed_event_attributes.failure.encoded_attributes
    decoded = await encrypted.http.post(
        "/codec/decode",
        json={
            "payloads": [
                {
                    "metadata": {
                        k: base64.b64encode(v).decode() for k, v in encoded.metadata.items()
                    },
                    "data": base64.b64encode(encoded.data).decode(),
                }
            ]
        },
        headers={"Authorization": f"Bearer {CODEC_TOKEN}"},
    )
    [attributes] = decoded.json()["payloads"]
    assert "answered 400" in base64.b64decode(attributes["data"]).decode()


async def test_a_step_being_retried_shows_its_last_failure_decoded(
    encrypted: Stack, targets: Targets
):
    """History holds the attempt's failure encoded; the gateway reads it back for the live
    status, as the Web UI does through the codec."""
    body = pipeline(
        targets,
        STEPS_CONFIG=[
            {
                "step_name": "flaky",
                "usid": "u1",
                "service_url": f"{targets.url}/flaky/{unique('enc')}?failures=100&code=503",
            }
        ],
        PIPELINE_SETTINGS={"error_handling": {"max_retries": 3, "retry_delay": 60}},
    )
    await encrypted.http.post("/execute?wait=false", json=body)

    async def retrying() -> dict[str, Any] | None:
        answer = await encrypted.http.get(f"/runs/{body['workflow_id']}")
        step: dict[str, Any] = answer.json()["steps"]["flaky"]
        return step if step["last_failure"] else None

    step = await wait_until(retrying)
    assert "answered 503" in step["last_failure"]
    handle = encrypted.client.get_workflow_handle(body["workflow_id"])
    assert "answered 503" not in history_text(await handle.fetch_history())
    await handle.terminate("test over")


async def test_a_webhook_being_retried_shows_its_last_error_decoded(
    encrypted: Stack, targets: Targets
):
    hook = unique("hook")
    targets.state.hooks_down.add(hook)
    body = pipeline(
        targets, PIPELINE_SETTINGS={"notifications": {"webhook_url": f"{targets.url}/hooks/{hook}"}}
    )
    response = await encrypted.http.post("/execute", json=body)
    assert response.json()["status"] == "completed", response.text

    async def retried() -> dict[str, Any] | None:
        webhooks = (await encrypted.http.get(f"/runs/{body['workflow_id']}")).json()["webhooks"]
        return webhooks if webhooks["events"][0]["last_error"] else None

    try:
        webhooks = await wait_until(retried)
    finally:
        targets.state.hooks_down.discard(hook)
    assert "answered 500" in webhooks["events"][0]["last_error"]


async def test_what_the_codec_cannot_read_is_a_422_naming_the_payload(encrypted: Stack):
    auth = {"Authorization": f"Bearer {CODEC_TOKEN}"}
    sealed = base64.b64encode(b"binary/encrypted").decode()
    key_id = base64.b64encode(b"k1").decode()
    for payload, message in (
        ({"metadata": {"encoding": "not base64!"}}, "payloads[1]: "),
        ({"metadata": {"encoding": sealed, KEY_ID_METADATA: key_id}, "data": "AAAA"}, "decrypt"),
        ({"metadata": {"encoding": sealed}, "data": "AAAA"}, "key id ''"),
    ):
        body = {"payloads": [{"data": "e30="}, payload]}
        response = await encrypted.http.post("/codec/decode", json=body, headers=auth)
        assert response.status_code == 422, response.text
        assert message in response.json()["detail"]


async def test_codec_calls_without_the_token_are_refused(encrypted: Stack):
    body = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "e30="}]}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": CODEC_TOKEN}):
        for route in ("/codec/decode", "/codec/encode"):
            response = await encrypted.http.post(route, json=body, headers=headers)
            assert response.status_code == 401, (route, headers)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "CODEC_AUTH_TOKEN" in response.json()["detail"]


async def test_without_a_token_the_codec_answers_on_loopback_only(
    dev_env: WorkflowEnvironment, redis_url: str
):
    body = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "e30="}]}
    for host, status in (("127.0.0.1", 200), ("0.0.0.0", 403)):
        settings = make_settings(
            dev_env.client,
            redis_url,
            gateway_host=host,
            payload_encryption_key=SecretStr(K1),
            # Beyond loopback the gateway needs keys to start at all; the codec has its own.
            gateway_api_keys=["acme:acme-key-0123456789abcdef"],
        )
        async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
            response = await http.post("/codec/decode", json=body)
            assert response.status_code == status, response.text
            if status == 200:
                assert response.json() == body  # not encrypted: passed through


async def test_codec_cors_answers_the_web_ui_origin_only(encrypted: Stack):
    ui_port = encrypted.settings.temporal_ui_port
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    for origin in (f"http://localhost:{ui_port}", f"http://127.0.0.1:{ui_port}"):
        response = await encrypted.http.options(
            "/codec/decode", headers={"Origin": origin, **preflight}
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin
    for origin in ("http://evil.example", f"http://localhost:{ui_port + 1}", "null"):
        response = await encrypted.http.options(
            "/codec/decode", headers={"Origin": origin, **preflight}
        )
        assert "access-control-allow-origin" not in response.headers
        answer = await encrypted.http.post(
            "/codec/decode",
            json={"payloads": []},
            headers={"Origin": origin, "Authorization": f"Bearer {CODEC_TOKEN}"},
        )
        assert "access-control-allow-origin" not in answer.headers


async def test_a_run_started_before_a_key_rotation_completes_after_it(
    dev_env: WorkflowEnvironment, redis_url: str, targets: Targets
):
    endpoint = unique("ep")
    before = make_settings(
        dev_env.client,
        redis_url,
        payload_encryption_key=SecretStr(K1),
        endpoint_workers=[endpoint],
    )
    body = pipeline(targets)
    body["STEPS_CONFIG"].append(
        {
            # Runs on an endpoint worker, which only starts after the rotation.
            "step_name": "later",
            "usid": "u2",
            "service_url": f"{targets.url}/record/{unique('later')}",
            "dependencies": ["call"],
            "endpoint": endpoint,
        }
    )
    old_client = await connect_temporal(before)
    async for _ in _run_workers(old_client, before, []):
        async with serve(create_app(before)) as url, httpx.AsyncClient(base_url=url) as http:
            response = await http.post("/execute", params={"wait": "false"}, json=body)
            assert response.status_code == 202, response.text

            async def first_step_done() -> bool:
                status = (await http.get(f"/runs/{body['workflow_id']}")).json()
                return bool(status["steps"]["call"]["status"] == "completed")

            await wait_until(first_step_done)
            # Redis holds no status of an encrypted run in clear: not the worker's, and not
            # the queued one the gateway publishes for other runs as it starts them.
            async with Redis.from_url(redis_url) as redis:
                keys = status_key(body["workflow_id"]), fresh_key(body["workflow_id"])
                assert await redis.exists(*keys) == 0

    # The workers restart with a new key first and the old one kept for what it wrote.
    after = before.model_copy(update={"payload_encryption_key": SecretStr(f"{K2},{K1}")})
    new_client = await connect_temporal(after)
    async for _ in _run_workers(new_client, after, [endpoint]):
        handle = new_client.get_workflow_handle(body["workflow_id"], result_type=DagRunResult)
        result = await asyncio.wait_for(handle.result(), 60)
        assert result.status == "completed"
        assert result.steps["later"].status == "completed"

    # Both keys wrote to this history: k1 before the rotation, k2 after.
    raw = await dev_env.client.get_workflow_handle(body["workflow_id"]).fetch_history()
    key_ids = {
        payload.metadata[KEY_ID_METADATA].decode()
        for event in raw.events
        for payloads in (
            event.workflow_execution_started_event_attributes.input,
            event.activity_task_scheduled_event_attributes.input,
            event.activity_task_completed_event_attributes.result,
        )
        for payload in payloads.payloads
        if KEY_ID_METADATA in payload.metadata
    }
    assert key_ids == {"k1", "k2"}
    assert TOKEN not in history_text(raw)


def test_make_dev_opens_the_web_ui_with_the_codec_endpoint() -> None:
    settings = Settings(_env_file=None, gateway_port=8123, payload_encryption_key=SecretStr(K1))  # type: ignore[call-arg]
    command = temporal_command(settings, BIN / "unused.db")
    flag = command.index("--ui-codec-endpoint")
    assert command[flag + 1] == "http://127.0.0.1:8123/codec"
    plain = Settings(_env_file=None, payload_encryption_key=None)  # type: ignore[call-arg]
    assert "--ui-codec-endpoint" not in temporal_command(plain, BIN / "unused.db")
