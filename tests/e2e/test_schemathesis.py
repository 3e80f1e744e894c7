"""Schemathesis over the gateway's own OpenAPI: generated and mutated requests, bounded in
number, against a real gateway process on loopback; no answer may be a server error.

The gateway runs as its own process (uvicorn) against the session's dev server and Redis, on
a task queue no worker polls: runs it starts stay queued, so generated pipelines never make
calls. `/endpoints/{name}` is left out: a proxied call waits for an endpoint worker for as
long as its own (generated, up to hours) budget.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from temporalio.testing import WorkflowEnvironment

from cli.stack import BIN, wait_for_port
from gateway.app import create_app
from settings import Settings
from tests.conftest import unique
from tests.fakes.targets import free_port

ROOT = Path(__file__).resolve().parents[2]
#: A tenant of its own: the runs it starts stay queued (no worker) and count as running.
KEY = "fuzz-key-0123456789abcdef"

# The schema needs no server: the lifespan (which connects) does not run for it. Health routes
# take no input, and readiness answers 503 here on purpose (no worker polls the queues).
SCHEMA = schemathesis.openapi.from_dict(
    create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
).exclude(path_regex="^/(endpoints|health)")


def delete_schedules(url: str) -> None:
    """Delete the schedules the generated requests created, so the dev server the session
    shares starts none of their runs after this module."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        for schedule in client.get("/schedules").raise_for_status().json():
            client.delete(f"/schedules/{schedule['schedule_id']}")


@pytest.fixture(scope="module")
def gateway_url(dev_env: WorkflowEnvironment, redis_url: str) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "REDIS_URL": redis_url,
        "TASK_QUEUE": unique("schemathesis"),
        "GATEWAY_API_KEYS": f"fuzz:{KEY}",
        "SYNC_WAIT_SECONDS": "0.5",
        "TENANT_REQUESTS_PER_SECOND": "0",
        # Generated schedules start runs (queued: no worker) until deleted, below.
        "TENANT_MAX_SCHEDULES": "5",
    }
    process = subprocess.Popen(
        [str(BIN / "uvicorn"), "gateway.app:create_app", "--factory", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, timeout=30)
        httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=10).raise_for_status()
        yield f"http://127.0.0.1:{port}"
        delete_schedules(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=10)
        # A traceback in the gateway's log is a server error even if the answer hid it.
        assert b"Traceback" not in errors, errors.decode()[-3000:]


@SCHEMA.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_generated_request_gets_a_server_error(case: schemathesis.Case, gateway_url: str):
    response = case.call(base_url=gateway_url, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code < 500, (case.path, response.status_code, response.text[:500])


def test_unauthenticated_requests_are_refused_not_failed(gateway_url: str) -> None:
    response = httpx.post(f"{gateway_url}/execute", json={})
    assert response.status_code == 401
