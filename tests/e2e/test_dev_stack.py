"""`make dev`'s stack is safe on a laptop: the environment `cli.dev` gives its processes,
served for real, refuses what a web page in the developer's browser could send it."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from cli.dev import dev_environment
from cli.devkey import DEV_TENANT, ensure_dev_api_key, key_file, local_dev_api_key
from gateway.app import create_app
from settings import Settings
from tests.conftest import Targets, _run_workers, make_settings, unique
from tests.fakes.targets import serve

EVIL = "https://evil.example"


@dataclass
class DevStack:
    http: httpx.AsyncClient
    settings: Settings
    key: str


@pytest.fixture
async def dev_stack(
    dev_env: WorkflowEnvironment, redis_url: str, tmp_path: Path
) -> AsyncIterator[DevStack]:
    endpoint = unique("ep")
    plain = make_settings(dev_env.client, redis_url, data_dir=tmp_path, outbound_allow=[])
    env = dev_environment(plain, {})
    settings = make_settings(
        dev_env.client,
        redis_url,
        data_dir=tmp_path,
        gateway_api_keys=env["GATEWAY_API_KEYS"],
        outbound_allow=env["OUTBOUND_ALLOW"],
        endpoint_workers=[endpoint],
    )
    async for _ in _run_workers(dev_env.client, settings, [endpoint]):
        async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
            yield DevStack(http, settings, ensure_dev_api_key(plain))


def test_the_dev_key_is_random_kept_for_its_owner_and_read_by_the_cli(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    env = dev_environment(settings, {"CORS_ALLOW_ORIGINS": "", "PATH": "/bin"})
    key = ensure_dev_api_key(settings)
    assert env["GATEWAY_API_KEYS"] == f"{DEV_TENANT}:{key}" and len(key) >= 32
    assert ensure_dev_api_key(settings) == key  # kept across starts
    assert stat.S_IMODE(key_file(settings).stat().st_mode) == 0o600
    assert local_dev_api_key(settings, "http://127.0.0.1:8000") == key
    assert local_dev_api_key(settings, "https://gateway.example.com") is None
    # Only the demo service is reachable from runs, and CORS is left as configured.
    assert env["OUTBOUND_ALLOW"] == f"127.0.0.1:{settings.demo_port},localhost:{settings.demo_port}"
    assert env["CORS_ALLOW_ORIGINS"] == ""
    other = Settings(_env_file=None, data_dir=tmp_path, gateway_api_keys=["ops:" + "k" * 20])  # type: ignore[call-arg]
    assert "GATEWAY_API_KEYS" not in dev_environment(other, {})  # the operator's keys stand


async def test_a_cross_origin_request_without_the_key_is_refused(dev_stack: DevStack) -> None:
    endpoint = dev_stack.settings.endpoint_workers[0]
    call = {"url": "http://127.0.0.1:8000/runs"}
    response = await dev_stack.http.post(
        f"/endpoints/{endpoint}", json=call, headers={"Origin": EVIL}
    )
    assert response.status_code == 401
    assert "access-control-allow-origin" not in response.headers
    preflight = await dev_stack.http.options(
        f"/endpoints/{endpoint}",
        headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    runs = await dev_stack.http.get("/runs", headers={"Origin": EVIL})
    assert runs.status_code == 401


async def test_a_rebinding_host_name_is_refused(dev_stack: DevStack) -> None:
    auth = {"Authorization": f"Bearer {dev_stack.key}"}
    assert (await dev_stack.http.get("/runs", headers=auth)).status_code == 200
    rebound = await dev_stack.http.get("/runs", headers={**auth, "Host": "evil.example:8000"})
    assert rebound.status_code == 400


async def test_dev_runs_reach_the_demo_service_only(dev_stack: DevStack, targets: Targets) -> None:
    # Another loopback service (here the test targets; on a laptop the gateway itself, the
    # Web UI, the worker's metrics) is refused, through the DAG engine and the endpoint proxy.
    auth = {"Authorization": f"Bearer {dev_stack.key}"}
    key = unique("loopback")
    body = {
        "workflow_id": unique("dev"),
        "STEPS_CONFIG": [
            {"step_name": "a", "usid": "u", "service_url": f"{targets.url}/echo/{key}"}
        ],
    }
    result = (await dev_stack.http.post("/execute", json=body, headers=auth)).json()
    assert result["status"] == "failed"
    assert result["steps"]["a"]["error"]["type"] == "OutboundBlocked"
    endpoint = dev_stack.settings.endpoint_workers[0]
    proxied = await dev_stack.http.post(
        f"/endpoints/{endpoint}", json={"url": f"{targets.url}/echo/{key}"}, headers=auth
    )
    assert proxied.json()["success"] is False
    assert "OutboundBlocked" in proxied.json()["error"]
    assert targets.state.calls[key] == 0
