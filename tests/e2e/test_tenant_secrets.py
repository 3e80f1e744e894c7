"""Tenants' secrets and signatures through the whole stack: a tenant's run fills in only its
own and shared secrets, an echoed secret is recorded nowhere, and a receiver can tell which
tenant's run sent an event."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook, WebhookVerificationError
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from gateway.app import create_app
from tests.conftest import Targets, _run_workers, make_settings, unique, wait_until
from tests.e2e.test_secrets import history_text
from tests.fakes.targets import serve

ACME_KEY, BETA_KEY = "acme-key-0123456789abcdef", "beta-key-0123456789abcdef"
ACME_STRIPE = f"acme-stripe-{uuid.uuid4().hex}"
BETA_STRIPE = f"beta-stripe-{uuid.uuid4().hex}"
SHARED_MAPS = f"shared-maps-{uuid.uuid4().hex}"
ACME_HOOKS, BETA_HOOKS = (
    "whsec_" + base64.b64encode(letter * 32).decode() for letter in (b"a", b"b")
)


@dataclass
class Tenants:
    acme: httpx.AsyncClient
    beta: httpx.AsyncClient
    client: Client


@pytest.fixture
async def tenants(
    dev_env: WorkflowEnvironment, redis_url: str, tmp_path: Path
) -> AsyncIterator[Tenants]:
    """A keyed gateway (acme, beta) and a worker holding each tenant's STRIPE, a shared MAPS,
    and each tenant's own webhook signing secret."""
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text(
        f"[shared]\nMAPS={SHARED_MAPS}\n"
        f"[tenant acme]\nSTRIPE={ACME_STRIPE}\n"
        f"[tenant beta]\nSTRIPE={BETA_STRIPE}\nBETA_ONLY={BETA_STRIPE}\n"
    )
    settings = make_settings(
        dev_env.client,
        redis_url,
        secrets_file=secrets_file,
        gateway_api_keys=[f"acme:{ACME_KEY}", f"beta:{BETA_KEY}"],
        webhook_tenant_signing_secrets=SecretStr(f"acme:{ACME_HOOKS} beta:{BETA_HOOKS}"),
    )
    async for engine in _run_workers(dev_env.client, settings, []):
        async with (
            serve(create_app(settings)) as url,
            httpx.AsyncClient(
                base_url=url, timeout=60, headers={"Authorization": f"Bearer {ACME_KEY}"}
            ) as acme,
            httpx.AsyncClient(
                base_url=url, timeout=60, headers={"Authorization": f"Bearer {BETA_KEY}"}
            ) as beta,
        ):
            yield Tenants(acme, beta, engine.client)


def one_step(url: str, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    return {
        "workflow_id": unique("tenant"),
        "namespace": "shop",
        "STEPS_CONFIG": [
            {
                "step_name": "call",
                "usid": "u1",
                "service_url": url,
                "method": "POST",
                "headers": headers,
                "outputs": ["answer"],
            }
        ],
        **fields,
    }


async def test_a_tenant_cannot_send_another_tenants_secret(tenants: Tenants, targets: Targets):
    key = unique("stolen")
    body = one_step(f"{targets.url}/record/{key}", {"X-Key": "{{secrets.BETA_ONLY}}"})
    answer = await tenants.acme.post("/execute", json=body)
    assert answer.status_code == 200, answer.text
    error = answer.json()["steps"]["call"]["error"]
    assert (error["type"], error["attempts"]) == ("UnknownSecret", 1)
    # The same words as for a name no tenant has: nothing says beta holds one.
    nowhere = one_step(f"{targets.url}/record/{key}", {"X-Key": "{{secrets.NOWHERE}}"})
    other = (await tenants.acme.post("/execute", json=nowhere)).json()["steps"]["call"]["error"]
    assert error["message"].replace("BETA_ONLY", "X") == other["message"].replace("NOWHERE", "X")
    assert targets.state.calls[key] == 0

    history = await tenants.client.get_workflow_handle(
        f"acme/{body['workflow_id']}"
    ).fetch_history()
    assert BETA_STRIPE not in history_text(history) + answer.text


async def test_each_tenant_gets_its_own_secret_under_one_name(tenants: Tenants, targets: Targets):
    for http, expected in ((tenants.acme, ACME_STRIPE), (tenants.beta, BETA_STRIPE)):
        key = unique("own")
        headers = {"X-Key": "{{secrets.STRIPE}}", "X-Maps": "{{secrets.MAPS}}"}
        answer = await http.post("/execute", json=one_step(f"{targets.url}/record/{key}", headers))
        assert answer.json()["status"] == "completed", answer.text
        [request] = targets.state.requests[key]
        assert (request["headers"]["x-key"], request["headers"]["x-maps"]) == (
            expected,
            SHARED_MAPS,
        )


async def test_an_echoed_secret_is_recorded_nowhere(tenants: Tenants, targets: Targets):
    """A request-inspection target answers with the secret it received: status, outputs,
    events, webhook and history hold `***` in its place."""
    key, hook = unique("echo"), unique("hook")
    body = one_step(
        f"{targets.url}/echo/{key}",
        {"Authorization": "Bearer {{secrets.STRIPE}}"},
        PIPELINE_SETTINGS={"notifications": {"webhook_url": f"{targets.url}/hooks/{hook}"}},
    )
    workflow_id = body["workflow_id"]
    answer = await tenants.acme.post("/execute", json=body)
    assert answer.json()["status"] == "completed", answer.text
    assert targets.state.requests[key][0]["headers"]["authorization"] == f"Bearer {ACME_STRIPE}"
    echoed = answer.json()["steps"]["call"]["result"]
    assert echoed["headers"]["authorization"] == "Bearer ***"

    status = await tenants.acme.get(f"/runs/{workflow_id}")
    output = await tenants.acme.get(f"/runs/{workflow_id}/outputs/answer")
    events = await tenants.acme.get(f"/runs/{workflow_id}/events")
    assert output.status_code == 200 and "Bearer ***" in output.text
    hooks = await wait_until(lambda: _final(targets.state.hooks.get(hook, [])), timeout=30)
    history = await tenants.client.get_workflow_handle(f"acme/{workflow_id}").fetch_history()
    for recorded in (
        answer.text,
        status.text,
        output.text,
        events.text,
        json.dumps(hooks),
        history_text(history),
    ):
        assert ACME_STRIPE not in recorded


async def _final(events: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    return events if events and events[-1]["event"] == "workflow.completed" else None


async def test_a_receiver_refuses_the_events_another_tenant_aims_at_it(
    tenants: Tenants, targets: Targets
):
    """acme points its webhook at beta's receiver: beta checks with its own secret and
    refuses every event; each event names acme, under acme's signature."""
    beta_receiver = unique("beta-receiver")
    body = one_step(
        f"{targets.url}/record/{unique('call')}",
        {},
        PIPELINE_SETTINGS={
            "notifications": {"webhook_url": f"{targets.url}/hooks/{beta_receiver}"}
        },
    )
    answer = await tenants.acme.post("/execute", json=body)
    assert answer.json()["status"] == "completed", answer.text
    events = await wait_until(lambda: _final(targets.state.hooks.get(beta_receiver, [])))
    bodies = targets.state.hook_bodies[beta_receiver]
    for event, raw in zip(events, bodies, strict=True):
        with pytest.raises(WebhookVerificationError):
            Webhook(BETA_HOOKS).verify(raw, event["_headers"])
        verified = Webhook(ACME_HOOKS).verify(raw, event["_headers"])
        assert verified["tenant"] == "acme"
        assert verified["workflow_id"] == body["workflow_id"]


async def test_an_instruction_run_fills_in_its_own_tenants_secret(
    tenants: Tenants, targets: Targets
):
    key = unique("instr")
    response = await tenants.beta.post(
        "/",
        json={
            "context": "hello",
            "instructions": [
                {
                    "type": "endpoint",
                    "apiUrl": f"{targets.url}/echo/{key}",
                    "method": "POST",
                    "headers": {"X-Key": "{{secrets.STRIPE}}"},
                    "body": {"previous": "{{result}}"},
                }
            ],
        },
    )
    assert response.status_code == 200, response.text
    instance_id = response.json()["instanceId"]

    async def finished() -> dict[str, Any] | None:
        answer = await tenants.beta.get("/", params={"instanceId": instance_id})
        status: dict[str, Any] = answer.json()
        return status if status["status"] in ("complete", "errored") else None

    final = await wait_until(finished)
    assert final["status"] == "complete", final
    assert targets.state.requests[key][0]["headers"]["x-key"] == BETA_STRIPE
    assert BETA_STRIPE not in json.dumps(final)  # the echo came back masked
