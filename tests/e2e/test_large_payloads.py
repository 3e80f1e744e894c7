"""Payloads of any size up to the response cap flow through a run, by reference.

The whole stack: real gateway, dev server, Redis and a local target answering megabytes of
JSON, with `OUTBOUND_MAX_RESPONSE_BYTES` at 32 MiB.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.testing import WorkflowEnvironment

from gateway.app import create_app
from tests.conftest import Gateway, Targets, _run_workers, make_settings, unique, wait_until
from tests.fakes.targets import json_document, serve
from workflows.dag.models import DagRunInput
from workflows.dag.workflow import DagWorkflow

MIB = 1024 * 1024
TEN_MB = 10 * MIB


@pytest.fixture
async def big_gateway(dev_env: WorkflowEnvironment, redis_url: str) -> AsyncIterator[Gateway]:
    """The gateway and workers with responses allowed up to 32 MiB."""
    settings = make_settings(dev_env.client, redis_url, outbound_max_response_bytes=32 * MIB)
    async for engine in _run_workers(dev_env.client, settings, []):
        app = create_app(settings)
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=120) as http:
            yield Gateway(url, http, engine)


async def timed_get(http: httpx.AsyncClient, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await http.get(path)
    return response, time.monotonic() - started


@pytest.mark.timeout(180)
async def test_ten_megabytes_flow_to_the_dependent_step_by_reference(
    big_gateway: Gateway, targets: Targets
) -> None:
    key = unique("big")
    workflow_id = unique("big-run")
    document = json_document(TEN_MB)
    size = len(json.dumps(document, separators=(",", ":")).encode())
    body = {
        "workflow_id": workflow_id,
        "namespace": "acme",
        "STEPS_CONFIG": [
            {
                "step_name": "fetch",
                "usid": "u-fetch",
                "method": "GET",
                "service_url": f"{targets.url}/json/{TEN_MB}",
                "outputs": ["doc"],
            },
            {
                "step_name": "digest",
                "usid": "u-digest",
                "service_url": f"{targets.url}/sink/{key}",
                "dependencies": ["fetch"],
                "outputs": ["ack"],
                "input_prep_config": {"body": {"doc": "{{doc}}", "count": "{{doc.count}}"}},
            },
        ],
        "PIPELINE_SETTINGS": {
            "timeouts": {"step_timeout": 60},
            "notifications": {"webhook_url": f"{targets.url}/hooks/{key}"},
        },
    }
    started = await big_gateway.http.post("/execute?wait=false", json=body)
    assert started.status_code == 202, started.text

    async def finished() -> dict[str, Any] | None:
        response, seconds = await timed_get(big_gateway.http, f"/runs/{workflow_id}")
        assert response.status_code == 200, response.text
        # Live, the status query waits for the worker's activation in progress (decoding the
        # 10 MB body: a few hundred ms, more on a busy machine); it never hangs on the body.
        assert seconds < 5.0, f"GET /runs/{{id}} took {seconds:.2f}s while running"
        status: dict[str, Any] = response.json()
        return status if status["status"] != "running" else None

    status = await wait_until(finished, timeout=150)
    assert status["status"] == "completed", status["error"]
    reference = {"$ref": f"/runs/{workflow_id}/outputs/doc", "size": size, "type": "object"}
    assert status["steps"]["fetch"]["outputs"] == {"doc": reference}
    assert status["steps"]["fetch"]["result"] == reference  # the same value, one reference
    assert status["outputs"]["doc"] == reference
    assert status["outputs"]["ack"] == {"received": pytest.approx(size, rel=0.01)}

    # The dependent step received the whole value.
    [received] = targets.state.requests[key]
    assert received["json"]["count"] == document["count"]
    assert received["json"]["doc"] == document

    # The finished run answers small, with the reference: nothing in it grows with the body.
    # (How fast is measured by bench/payloads.py, 8–36 ms; here only a hang is refused.)
    response, seconds = await timed_get(big_gateway.http, f"/runs/{workflow_id}")
    assert seconds < 5.0, f"GET /runs/{{id}} took {seconds:.2f}s"
    assert len(response.content) < 64 * 1024
    assert response.json()["outputs"]["doc"] == reference

    output = await big_gateway.http.get(f"/runs/{workflow_id}/outputs/doc")
    assert output.status_code == 200
    assert output.headers["content-type"] == "application/json"
    assert int(output.headers["content-length"]) == size
    assert output.json() == document
    result = await big_gateway.http.get(f"/runs/{workflow_id}/steps/fetch/result")
    assert result.status_code == 200 and result.json() == document

    # Webhook events carry the reference, not the body.
    completed = [e for e in targets.state.hooks[key] if e["event"] == "step.completed"]
    assert completed[0]["data"]["result"] == reference

    # No history event holds the body: it went to the blob store.
    handle = big_gateway.engine.client.get_workflow_handle(workflow_id)
    largest = max([event.ByteSize() async for event in handle.fetch_history_events()])
    assert largest < big_gateway.engine.settings.payload_inline_max_bytes


async def test_a_large_result_without_outputs_has_its_own_route_even_after_a_failure(
    gateway: Gateway, targets: Targets, redis: Redis
) -> None:
    workflow_id = unique("big-fail")
    document = json_document(200_000)  # above VALUE_INLINE_MAX_BYTES, below the blob threshold
    body = {
        "workflow_id": workflow_id,
        "namespace": "acme",
        "STEPS_CONFIG": [
            {
                "step_name": "page",
                "usid": "u-page",
                "method": "GET",
                "service_url": f"{targets.url}/json/200000",
            },
            {
                "step_name": "small",
                "usid": "u-small",
                "service_url": f"{targets.url}/openai/{unique('small')}",
                "outputs": ["summary"],
                "input_prep_config": {"body": {"text": "hi"}},
            },
            {
                "step_name": "bad",
                "usid": "u-bad",
                "service_url": f"{targets.url}/status/{unique('bad')}/404",
                "dependencies": ["page", "small"],
            },
        ],
    }
    response = await gateway.http.post("/execute", json=body)
    assert response.status_code == 200, response.text
    status = response.json()
    assert status["status"] == "failed"
    reference = {
        "$ref": f"/runs/{workflow_id}/steps/page/result",
        "size": len(json.dumps(document, separators=(",", ":")).encode()),
        "type": "object",
    }
    assert status["steps"]["page"]["result"] == reference
    again = (await gateway.http.get(f"/runs/{workflow_id}")).json()  # the failure's details
    assert again["steps"]["page"]["result"] == reference

    result = await gateway.http.get(f"/runs/{workflow_id}/steps/page/result")
    assert result.status_code == 200 and result.json() == document
    inline = await gateway.http.get(f"/runs/{workflow_id}/steps/small/result")
    assert inline.json() == status["steps"]["small"]["result"]
    assert (
        await gateway.http.get(f"/runs/{workflow_id}/outputs/summary")
    ).json() == "summary of hi"

    failed = await gateway.http.get(f"/runs/{workflow_id}/steps/bad/result")
    assert failed.status_code == 404 and "failed" in failed.json()["detail"]
    missing = await gateway.http.get(f"/runs/{workflow_id}/outputs/nope")
    assert missing.status_code == 404 and "summary" in missing.json()["detail"]

    # Past OUTPUT_TTL_SECONDS: a small output still answers from the status, a large one is gone.
    await redis.delete(f"acme:{workflow_id}:summary", f"acme:{workflow_id}:page_result")
    assert (
        await gateway.http.get(f"/runs/{workflow_id}/outputs/summary")
    ).json() == "summary of hi"
    gone = await gateway.http.get(f"/runs/{workflow_id}/steps/page/result")
    assert gone.status_code == 410 and "OUTPUT_TTL_SECONDS" in gone.json()["detail"]


async def test_a_run_whose_stored_payload_expired_says_so_where_users_look(
    dev_env: WorkflowEnvironment, redis_url: str, targets: Targets, redis: Redis
) -> None:
    """A worker that must replay a run whose blob is gone cannot go on with it; its workflow
    task fails naming the blob and PAYLOAD_BLOB_TTL_SECONDS (Web UI, `temporal workflow
    describe`) until the run's execution timeout ends it."""
    settings = make_settings(dev_env.client, redis_url)
    slow = unique("slow")
    payload = DagRunInput.model_validate(
        {
            "workflow_id": unique("expired"),
            "namespace": "acme",
            "STEPS_CONFIG": [
                {
                    "step_name": "page",
                    "usid": "u1",
                    "method": "GET",
                    "service_url": f"{targets.url}/json/300000",
                },
                {
                    "step_name": "wait",
                    "usid": "u2",
                    "service_url": f"{targets.url}/slow/{slow}?ms=2000",
                    "dependencies": ["page"],
                },
            ],
        }
    )
    payload.engine.task_queue = settings.task_queue
    client = dev_env.client

    async def waiting() -> bool:
        return targets.state.calls[slow] > 0

    async for _ in _run_workers(client, settings, []):
        handle = await client.start_workflow(
            DagWorkflow.run, payload, id=payload.workflow_id, task_queue=settings.task_queue
        )
        await wait_until(waiting)
    # The worker that cached the run is gone, and so are the blobs its history references.
    history = b"".join(e.SerializeToString() for e in (await handle.fetch_history()).events)
    prefix = settings.payload_blob_prefix
    blobs = [key async for key in redis.scan_iter(prefix + "*")]
    expired = [key for key in blobs if key.removeprefix(prefix).encode() in history]
    assert expired
    await redis.delete(*expired)

    async def task_failure() -> Failure | None:
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                return event.workflow_task_failed_event_attributes.failure
        return None

    try:
        async for _ in _run_workers(client, settings, []):
            failure = await wait_until(task_failure)
    finally:
        await handle.terminate("test over")
    assert failure.application_failure_info.type == "PayloadExpired"
    assert "is no longer in Redis" in failure.message
    assert "PAYLOAD_BLOB_TTL_SECONDS" in failure.message
