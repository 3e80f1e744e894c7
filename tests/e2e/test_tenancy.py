"""Tenants and API keys through the real gateway: who may do what, and whose run is whose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from gateway.app import create_app
from settings import Settings
from tests.conftest import Engine, Targets, unique, wait_until
from tests.fakes.targets import serve

ACME = "acme-key-0123456789abcdef"
BETA = "beta-key-0123456789abcdef"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def keyed(engine: Engine, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"gateway_api_keys": [f"acme:{ACME}", f"beta:{BETA}"]}
    values.update(overrides)
    return engine.settings.model_copy(update=values)


@pytest.fixture
async def http(dev_engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve(create_app(keyed(dev_engine))) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as client,
    ):
        yield client


def pipeline(targets: Targets, workflow_id: str, key: str, ms: int = 0) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id,
        "namespace": "shop",
        "STEPS_CONFIG": [
            {
                "step_name": "a",
                "usid": "u1",
                "service_url": f"{targets.url}/slow/{key}?ms={ms}",
                "outputs": ["out"],
            }
        ],
    }


async def test_every_route_but_health_needs_a_valid_key(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health/live")).status_code == 200
    # Readiness answers without a key too (200 or 503: the fixture serves the main queue only).
    for path in ("/health/ready", "/health"):
        assert (await http.get(path)).json()["temporal"] == "ok"
    for method, path in [
        ("POST", "/execute"),
        ("POST", "/validate"),
        ("GET", "/runs/anything"),
        ("POST", "/runs/anything/rerun"),
        ("POST", "/"),
        ("POST", "/batch"),
        ("GET", "/?instanceId=instr-x"),
        ("POST", "/endpoints/endpoint-1"),
    ]:
        for headers in ({}, auth("wrong-key-0123456789"), {"Authorization": ACME}):
            response = await http.request(method, path, json={}, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["www-authenticate"] == "Bearer"
    # The payload formats are public documents, like /openapi.json.
    assert (await http.get("/schemas/pipeline")).status_code == 200


async def test_tenants_see_only_their_own_runs_and_share_ids_safely(
    http: httpx.AsyncClient, targets: Targets, redis: Redis
) -> None:
    workflow_id = unique("shared")
    acme_key, beta_key = unique("acme"), unique("beta")
    acme = await http.post(
        "/execute?wait=false",
        json=pipeline(targets, workflow_id, acme_key, ms=1500),
        headers=auth(ACME),
    )
    assert acme.status_code == 202

    # Beta cannot read, and cannot attach: the same id is beta's own, separate run.
    assert (await http.get(f"/runs/{workflow_id}", headers=auth(BETA))).status_code == 404
    beta = await http.post(
        "/execute", json=pipeline(targets, workflow_id, beta_key), headers=auth(BETA)
    )
    assert beta.status_code == 200
    assert beta.json()["status"] == "completed"
    assert beta.json()["run_id"] != acme.json()["run_id"]
    assert targets.state.calls[beta_key] == 1

    async def acme_done() -> dict[str, Any] | None:
        status = (await http.get(f"/runs/{workflow_id}", headers=auth(ACME))).json()
        return status if status["status"] == "completed" else None

    done = await wait_until(acme_done)
    assert done["workflow_id"] == workflow_id
    assert targets.state.calls[acme_key] == 1
    # Each tenant's outputs under its own keys.
    assert await redis.get(f"acme:shop:{workflow_id}:out") is not None
    assert await redis.get(f"beta:shop:{workflow_id}:out") is not None


async def test_concurrent_reads_of_one_id_answer_each_tenant_its_own_run(
    http: httpx.AsyncClient, targets: Targets
) -> None:
    # Reads of one run share one read: never across tenants, whose runs share the id.
    workflow_id = unique("read-together")
    for key, ms in ((ACME, 3000), (BETA, 0)):
        body = pipeline(targets, workflow_id, unique("k"), ms=ms)
        assert (await http.post("/execute?wait=false", json=body, headers=auth(key))).is_success

    async def beta_done() -> dict[str, Any] | None:
        status = (await http.get(f"/runs/{workflow_id}", headers=auth(BETA))).json()
        return status if status["status"] == "completed" else None

    beta_run = (await wait_until(beta_done))["run_id"]
    reads = await asyncio.gather(
        *(http.get(f"/runs/{workflow_id}", headers=auth(key)) for key in [ACME, BETA] * 4)
    )
    answers = [read.json() for read in reads]
    assert [a["status"] for a in answers] == ["running", "completed"] * 4
    assert {a["run_id"] for a in answers[1::2]} == {beta_run}
    assert beta_run not in {a["run_id"] for a in answers[::2]}


async def test_instruction_runs_are_the_tenants_own(
    http: httpx.AsyncClient, targets: Targets
) -> None:
    body = {
        "context": "c",
        "instructions": [{"type": "endpoint", "apiUrl": f"{targets.url}/echo/{unique('i')}"}],
    }
    created = (await http.post("/", json=body, headers=auth(ACME))).json()
    instance = created["instanceId"]
    assert instance.startswith("instr-")
    own = await http.get("/", params={"instanceId": instance}, headers=auth(ACME))
    assert own.status_code == 200 and own.json()["instanceId"] == instance
    other = await http.get("/", params={"instanceId": instance}, headers=auth(BETA))
    assert other.status_code == 404
    assert (await http.get(f"/runs/{instance}", headers=auth(BETA))).status_code == 404


async def test_runs_can_be_found_by_tenant(
    dev_engine: Engine, http: httpx.AsyncClient, targets: Targets
) -> None:
    workflow_id = unique("found")
    await http.post(
        "/execute", json=pipeline(targets, workflow_id, unique("k")), headers=auth(BETA)
    )
    listed = [
        execution.id
        async for execution in dev_engine.client.list_workflows(
            f"WorkflowStationTenant = 'beta' AND WorkflowStationId = '{workflow_id}'"
        )
    ]
    assert listed == [f"beta/{workflow_id}"]


async def test_request_rate_is_limited_per_tenant(dev_engine: Engine) -> None:
    # A tenant no other test sends requests for: the tests before this one count theirs in
    # the same Redis windows (under the default limit), and may have used this second's.
    quiet = "quiet-key-0123456789abcdef"
    settings = keyed(
        dev_engine,
        tenant_requests_per_second=3,
        gateway_api_keys=[f"acme:{ACME}", f"quiet:{quiet}"],
    )
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        # At once, so they fall in one or two of the one-second windows.
        responses = await asyncio.gather(
            *(http.get("/runs/none", headers=auth(ACME)) for _ in range(10))
        )
        other = await http.get("/runs/none", headers=auth(quiet))
    answers = [response.status_code for response in responses]
    # 3 per window: at most 6 get through whichever windows they fell in; the rest wait.
    assert set(answers) <= {404, 429} and answers.count(429) >= 4
    limited = next(response for response in responses if response.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert other.status_code == 404  # another tenant's budget is its own


async def test_running_runs_are_limited_per_tenant(dev_engine: Engine, targets: Targets) -> None:
    solo = "solo-key-0123456789abcdef"  # a tenant no other test starts runs for
    settings = keyed(dev_engine, tenant_max_running_runs=1, gateway_api_keys=[f"solo:{solo}"])
    async with (
        serve(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        first = await http.post(
            "/execute?wait=false",
            json=pipeline(targets, unique("busy"), unique("k"), ms=3000),
            headers=auth(solo),
        )
        assert first.status_code == 202

        async def refused() -> httpx.Response | None:
            response = await http.post(
                "/execute?wait=false",
                json=pipeline(targets, unique("more"), unique("k")),
                headers=auth(solo),
            )
            return response if response.status_code == 429 else None

        # Visibility catches up within moments of the first start.
        second = await wait_until(refused, timeout=30)
    assert second.headers["retry-after"]
    assert "TENANT_MAX_RUNNING_RUNS" in second.json()["detail"]


async def test_an_unknown_host_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.get("/runs/anything", headers={"Host": "evil.example"})
    assert response.status_code == 400
    # Health probes come by the replica's IP address (Kubernetes, load balancers).
    probe = await http.get("/health/live", headers={"Host": "10.1.2.3:8000"})
    assert probe.status_code == 200


def test_an_open_gateway_refuses_to_serve_beyond_loopback() -> None:
    settings = Settings(_env_file=None, gateway_host="0.0.0.0")  # type: ignore[call-arg]
    with pytest.raises(RuntimeError, match="GATEWAY_API_KEYS"):
        create_app(settings)
    keyed_settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        gateway_host="0.0.0.0",
        gateway_api_keys=[f"acme:{ACME}"],
    )
    create_app(keyed_settings)


@pytest.mark.parametrize(
    ("entry", "reason"),
    [("acme", "must be tenant:key"), ("Acme:" + ACME, "must be tenant:key"), ("acme:short", "16")],
)
def test_bad_api_key_entries_stop_the_gateway_naming_the_entry(entry: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason) as caught:
        Settings(_env_file=None, gateway_api_keys=[entry])  # type: ignore[call-arg]
    assert "short" not in str(caught.value).replace("shorter", "")


async def test_a_rerun_is_the_tenants_own_and_found_by_its_source(
    dev_engine: Engine, http: httpx.AsyncClient, targets: Targets
) -> None:
    workflow_id = unique("rerun-tenant")
    body = pipeline(targets, workflow_id, unique("k"))
    assert (await http.post("/execute", json=body, headers=auth(ACME))).status_code == 200

    other = await http.post(f"/runs/{workflow_id}/rerun", json={}, headers=auth(BETA))
    assert other.status_code == 404
    own = await http.post(f"/runs/{workflow_id}/rerun", json={"from_step": "a"}, headers=auth(ACME))
    assert own.status_code == 202, own.text
    rerun_id = own.json()["workflow_id"]
    assert (await http.get(f"/runs/{rerun_id}", headers=auth(BETA))).status_code == 404

    async def found() -> list[str]:
        return [
            execution.id
            async for execution in dev_engine.client.list_workflows(
                f"WorkflowStationTenant = 'acme' AND WorkflowStationRerunOf = '{workflow_id}'"
            )
        ]

    assert await wait_until(found) == [f"acme/{rerun_id}"]
