"""`{{secrets.NAME}}` through the whole stack: the target gets the secret; history, status,
webhooks and logs never do."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from gateway.app import create_app
from kernel.codec import ENCODING, EncryptionCodec, PayloadDecryptionError
from settings import Settings
from tests.conftest import (
    Gateway,
    Targets,
    _run_workers,
    make_settings,
    unique,
    wait_until,
)
from tests.fakes.targets import serve

SECRET = f"s3cr3t-{uuid.uuid4().hex}"
BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


@pytest.fixture
async def secret_gateway(
    dev_env: WorkflowEnvironment, redis_url: str, tmp_path: Path
) -> AsyncIterator[Gateway]:
    """The gateway and a worker whose SECRETS_FILE holds API_TOKEN."""
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text(f"# the worker's secrets\nAPI_TOKEN={SECRET}\n")
    settings = make_settings(dev_env.client, redis_url, secrets_file=secrets_file)
    async for engine in _run_workers(dev_env.client, settings, []):
        async with (
            serve(create_app(settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=60) as http,
        ):
            yield Gateway(url, http, engine)


def history_text(history: WorkflowHistory) -> str:
    """The history as JSON, followed by every base64 string in it decoded, and every payload
    the tests' codec encrypted decrypted: a secret could hide in any of them."""
    raw = history.to_json()
    decoded: list[str] = []
    keys = Settings(_env_file=None).encryption_keys  # type: ignore[call-arg]
    codec = EncryptionCodec(keys) if keys else None

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if (
                isinstance(codec, EncryptionCodec)
                and value.get("metadata", {}).get("encoding") == base64.b64encode(ENCODING).decode()
            ):
                payload = json_format.ParseDict(value, Payload(), ignore_unknown_fields=True)
                with contextlib.suppress(PayloadDecryptionError):  # not the tests' key
                    decoded.append(codec.decrypt(payload).data.decode("utf-8", "replace"))
            value = list(value.values())
        if isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and BASE64.fullmatch(value):
            with contextlib.suppress(binascii.Error, ValueError):
                decoded.append(base64.b64decode(value).decode("utf-8", "replace"))

    walk(json.loads(raw))
    return raw + "\n".join(decoded)


async def test_a_secret_reaches_its_target_and_nothing_else(
    secret_gateway: Gateway, targets: Targets, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    called, retried, hook = unique("called"), unique("retried"), unique("hook")
    workflow_id = unique("secret")
    body = {
        "workflow_id": workflow_id,
        "namespace": "acme",
        "input_data": {"lang": "fr"},
        "STEPS_CONFIG": [
            {
                "step_name": "call",
                "usid": "u1",
                "service_url": f"{targets.url}/record/{called}",
                "method": "POST",
                "headers": {"Authorization": "Bearer {{secrets.API_TOKEN}}"},
                "input_prep_config": {
                    "query": {"token": "{{secrets.API_TOKEN}}", "lang": "{{lang}}"},
                    "body": {"text": "hello"},
                },
                "outputs": ["answer"],
            },
            {
                # A 503 first: the failed attempt's message quotes the URL.
                "step_name": "retried",
                "usid": "u2",
                "service_url": f"{targets.url}/flaky/{retried}?sig={{{{secrets.API_TOKEN}}}}",
                "method": "GET",
                "dependencies": ["call"],
            },
        ],
        "PIPELINE_SETTINGS": {
            "error_handling": {"max_retries": 2, "retry_delay": 0.1},
            "notifications": {"webhook_url": f"{targets.url}/hooks/{hook}"},
        },
    }
    response = await secret_gateway.http.post("/execute", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    assert response.json()["steps"]["retried"]["attempts"] == 2

    # The target got the secret, in the header and the query string.
    [request] = targets.state.requests[called]
    assert request["headers"]["authorization"] == f"Bearer {SECRET}"
    assert request["query"] == {"token": SECRET, "lang": "fr"}
    assert [r["query"]["sig"] for r in targets.state.requests[retried]] == [SECRET, SECRET]

    # History: the scheduled calls hold the placeholder, and no event holds the value.
    client = secret_gateway.engine.client
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    recorded = history_text(history)
    assert "Bearer {{secrets.API_TOKEN}}" in recorded
    assert "?sig=***" in recorded  # the retried attempt's failure, redacted
    assert SECRET not in recorded

    status = await secret_gateway.http.get(f"/runs/{workflow_id}")
    assert status.status_code == 200 and status.json()["status"] == "completed"
    assert SECRET not in status.text

    events = targets.state.hooks[hook]
    assert [e["event"] for e in events][-1] == "workflow.completed"
    assert SECRET not in json.dumps(events)

    assert caplog.records and SECRET not in caplog.text


async def test_an_unknown_secret_fails_its_step_at_once_naming_it(
    secret_gateway: Gateway, targets: Targets
):
    key = unique("unknown")
    body = {
        "workflow_id": unique("secret"),
        "STEPS_CONFIG": [
            {
                "step_name": "call",
                "usid": "u1",
                "service_url": f"{targets.url}/record/{key}",
                "headers": {"X-Key": "{{secrets.NOT_CONFIGURED}}"},
            }
        ],
        "PIPELINE_SETTINGS": {"error_handling": {"max_retries": 3, "retry_delay": 0.1}},
    }
    result = (await secret_gateway.http.post("/execute", json=body)).json()
    assert result["status"] == "failed"
    error = result["steps"]["call"]["error"]
    assert error["type"] == "UnknownSecret" and error["attempts"] == 1
    assert "{{secrets.NOT_CONFIGURED}}" in error["message"]
    assert targets.state.calls[key] == 0


async def test_an_invalid_secret_reference_is_refused_at_submission(secret_gateway: Gateway):
    body = {
        "workflow_id": unique("secret"),
        "STEPS_CONFIG": [
            {
                "step_name": "call",
                "usid": "u1",
                "service_url": "https://api.example.com/",
                "headers": {"X-Key": "{{secrets.my-key}}"},
            }
        ],
    }
    response = await secret_gateway.http.post("/execute", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "STEPS_CONFIG", 0, "headers", "X-Key"]


async def test_an_endpoint_instruction_fills_in_its_own_secrets_and_no_smuggled_one(
    secret_gateway: Gateway, targets: Targets
):
    async def run(key: str, context: str) -> dict[str, Any]:
        response = await secret_gateway.http.post(
            "/",
            json={
                "context": context,
                "instructions": [
                    {
                        "type": "endpoint",
                        "apiUrl": f"{targets.url}/record/{key}?k={{{{secrets.API_TOKEN}}}}",
                        "method": "POST",
                        "headers": {"X-Key": "{{secrets.API_TOKEN}}"},
                        "body": {"previous": "{{result}}"},
                    }
                ],
            },
        )
        assert response.status_code == 200, response.text
        instance_id = response.json()["instanceId"]

        async def finished() -> dict[str, Any] | None:
            answer = await secret_gateway.http.get("/", params={"instanceId": instance_id})
            status: dict[str, Any] = answer.json()
            return status if status["status"] in ("complete", "errored") else None

        final: dict[str, Any] = await wait_until(finished)
        client = secret_gateway.engine.client
        history = await client.get_workflow_handle(instance_id).fetch_history()
        assert SECRET not in history_text(history) and SECRET not in json.dumps(final)
        return final

    # A placeholder in the text the step works on is data: sent as it is.
    key = unique("instr")
    final = await run(key, "a template mentions {{secrets.SOMETHING_ELSE}}")
    assert final["status"] == "complete", final
    [request] = targets.state.requests[key]
    assert request["headers"]["x-key"] == SECRET
    assert request["query"] == {"k": SECRET}
    assert request["json"] == {"previous": "a template mentions {{secrets.SOMETHING_ELSE}}"}

    # Text (an LLM's answer, say) asking for a secret the call uses would have it filled in
    # where the text chose: the step fails instead, and nothing is sent.
    key = unique("smuggled")
    final = await run(key, "please post {{secrets.API_TOKEN}} in the comment")
    assert final["status"] == "errored"
    assert final["error"]["type"] == "TemplateError"
    assert "{{secrets.API_TOKEN}}, which the request uses" in final["error"]["message"]
    assert targets.state.calls[key] == 0
