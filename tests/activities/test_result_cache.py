"""The HTTP activity's result cache against real Redis and a counting target: what its key
leaves out (secret values, idempotency and trace headers) and what it keeps apart (tenants)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from activities.http.activities import HttpActivities
from activities.http.models import HttpCall, HttpResult
from activities.http.outbound import build_outbound_client
from activities.http.secrets import Secrets
from activities.store.blobs import content_key
from activities.store.cache import CACHE_BLOB_PREFIX, keep_answer, read_answer
from activities.store.models import CACHE_KEY_PREFIX, ResultCaching
from tests.conftest import LOOPBACK, Targets, activity_env, unique

TOKEN = "tok-cache-9Qx/+7=zz"


@pytest.fixture
async def http(redis: Redis) -> AsyncIterator[HttpActivities]:
    secrets = Secrets({"API_TOKEN": TOKEN}, tenants={"beta": {"API_TOKEN": TOKEN}})
    async with build_outbound_client(allow=LOOPBACK, max_redirects=3) as client:
        yield HttpActivities(client, max_response_bytes=10_000, secrets=secrets, redis=redis)


async def call(activities: HttpActivities, url: str, **fields: Any) -> HttpResult:
    request = HttpCall(
        method="POST",
        url=url,
        body={"q": 1},
        send_body=True,
        secret_names=["API_TOKEN"],
        cache=ResultCaching(ttl_seconds=60),
        **fields,
    )
    return await activity_env().run(activities.call_http, request)


async def test_the_key_skips_idempotency_and_trace_headers_and_holds_no_secret(
    http: HttpActivities, targets: Targets, redis: Redis
):
    key = unique("echoed")
    url = f"{targets.url}/echo/{key}"
    auth = {"Authorization": "Bearer {{secrets.API_TOKEN}}"}
    first = await call(http, url, headers={**auth, "Idempotency-Key": "run-1"})
    assert not first.cached
    assert targets.state.requests[key][0]["headers"]["authorization"] == f"Bearer {TOKEN}"
    second = await call(
        http, url, headers={**auth, "Idempotency-Key": "run-2", "traceparent": "00-ab-cd-01"}
    )
    assert second.cached and second.body == first.body
    assert targets.state.calls[key] == 1
    # The target echoed the token; neither the entry's key nor its value holds it.
    entries = [name async for name in redis.scan_iter(match=f"{CACHE_KEY_PREFIX}*")]
    values = [await redis.get(name) for name in entries]
    assert values and all(value and TOKEN not in value for value in values)

    # Another tenant with the same request and the same secret value: its own entry.
    beta = await call(http, url, headers={**auth, "Idempotency-Key": "run-3"}, tenant="beta")
    assert not beta.cached
    assert targets.state.calls[key] == 2


async def test_a_large_answer_many_entries_share_is_kept_once(redis: Redis):
    body = {"rows": ["x" * 100] * 400}  # about 41 KB of JSON
    keys = [f"{CACHE_KEY_PREFIX}{unique('same-page')}" for _ in range(3)]
    for n, key in enumerate(keys):
        value = {"status": 200, "url": f"https://x/page?n={n}", "body": body}
        await keep_answer(redis, key, value, 60, "test")

    blob = CACHE_BLOB_PREFIX + content_key(json_text(body).encode())
    entries = [json.loads(await redis.get(key) or "{}") for key in keys]
    read = [await read_answer(redis, key, "test") for key in keys]

    # Each entry names the one copy of the body; the rest of each answer is its own.
    assert await redis.get(blob) == json_text(body)
    assert [entry["blobs"] for entry in entries] == [{"body": blob.split(":")[-1]}] * 3
    assert 0 < await redis.ttl(blob) <= 60
    assert [answer.value if answer else None for answer in read] == [
        {"status": 200, "url": f"https://x/page?n={n}", "body": body} for n in range(3)
    ]
    # A blob gone (evicted, deleted) makes its entries misses, never half an answer.
    await redis.delete(blob)
    assert await read_answer(redis, keys[0], "test") is None


def json_text(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))
