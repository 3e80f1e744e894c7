"""The HTTP-call activity with real HTTP to local servers: how each outcome is classified."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from standardwebhooks import Webhook, WebhookVerificationError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from activities.http.activities import HttpActivities, UndecodableBody, parse_body
from activities.http.models import HttpCall, HttpResult, WebhookDelivery
from activities.http.outbound import build_outbound_client
from activities.http.signing import WebhookSigner
from activities.store.clients import close_redis
from activities.store.models import OutputTarget
from tests.conftest import LOOPBACK, WEBHOOK_SECRET, Targets, activity_env, unique
from tests.fakes.targets import free_port
from worker import configure_logging


@pytest.fixture
async def http() -> AsyncIterator[HttpActivities]:
    async with build_outbound_client(allow=LOOPBACK, max_redirects=3) as client:
        yield HttpActivities(client, max_response_bytes=1000)


async def call(activities: HttpActivities, **fields: Any) -> HttpResult:
    return await activity_env().run(activities.call_http, HttpCall(**fields))


async def failure(activities: HttpActivities, **fields: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await call(activities, **fields)
    return info.value


async def test_json_and_text_bodies(http: HttpActivities, targets: Targets):
    result = await call(
        http,
        method="POST",
        url=f"{targets.url}/echo/a",
        body={"k": 1},
        send_body=True,
        headers={"X-N": 2},
        query={"q": [1]},
    )
    assert result.status == 200 and result.is_json
    assert result.body["json"] == {"k": 1}
    assert result.body["headers"]["x-n"] == "2"
    assert result.body["query"] == {"q": "[1]"}
    text = await call(http, url=f"{targets.url}/text/b")
    assert (text.body, text.is_json) == ("plain text for b", False)


@pytest.mark.parametrize(
    ("code", "error_type", "retryable"),
    [
        (400, "HttpClientError", False),
        (404, "HttpClientError", False),
        (408, "HttpTimeoutStatus", True),
        (429, "HttpRateLimited", True),
        (500, "HttpServerError", True),
        (503, "HttpUnavailable", True),
    ],
)
async def test_error_statuses_are_classified(
    http: HttpActivities, targets: Targets, code: int, error_type: str, retryable: bool
):
    error = await failure(http, url=f"{targets.url}/status/{unique('s')}/{code}", label="step 'x'")
    assert error.type == error_type
    assert error.non_retryable is not retryable
    assert error.details[0]["status"] == code
    assert error.message.startswith("step 'x': GET")


async def test_retry_after_sets_the_next_retry_delay(http: HttpActivities, targets: Targets):
    error = await failure(http, url=f"{targets.url}/status/{unique('r')}/429?retry_after=7")
    assert error.next_retry_delay == timedelta(seconds=7)


async def test_retry_after_is_capped_by_the_retry_policy(
    http: HttpActivities, targets: Targets
) -> None:
    # `Retry-After: 99999999` must not park a step for years: the policy's longest interval
    # bounds the wait.
    env = activity_env(retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=3)))
    url = f"{targets.url}/status/{unique('r')}/429?retry_after=99999999"
    with pytest.raises(ApplicationError) as caught:
        await env.run(http.call_http, HttpCall(url=url, label="step 'x'"))
    assert caught.value.next_retry_delay == timedelta(seconds=3)


async def test_client_errors_can_be_returned_instead(http: HttpActivities, targets: Targets):
    result = await call(
        http, url=f"{targets.url}/status/{unique('p')}/404", fail_on_client_error=False
    )
    assert result.status == 404
    error = await failure(
        http, url=f"{targets.url}/status/{unique('p')}/502", fail_on_client_error=False
    )
    assert error.type == "HttpServerError" and not error.non_retryable


async def test_transport_failures_and_timeouts_retry(http: HttpActivities, targets: Targets):
    refused = await failure(http, url=f"http://127.0.0.1:{free_port()}/x")
    assert refused.type == "TransportError" and not refused.non_retryable
    slow = await failure(http, url=f"{targets.url}/slow/{unique('t')}?ms=2000", timeout_seconds=0.2)
    assert slow.type == "TransportError" and "timed out after 0.2s" in slow.message


async def test_requests_that_cannot_succeed_do_not_retry(http: HttpActivities, targets: Targets):
    loop = await failure(http, url=f"{targets.url}/loop/{unique('l')}")
    assert (loop.type, loop.non_retryable) == ("InvalidRequest", True)
    assert "OUTBOUND_MAX_REDIRECTS" in loop.message
    big = await failure(http, url=f"{targets.url}/big/5000")
    assert (big.type, big.non_retryable) == ("ResponseTooLarge", True)
    bad_url = await failure(http, url="ftp://example.com/x")
    assert (bad_url.type, bad_url.non_retryable) == ("InvalidRequest", True)


async def test_blocked_destination_is_refused(targets: Targets):
    async with build_outbound_client() as client:
        guarded = HttpActivities(client, max_response_bytes=1000)
        error = await failure(guarded, url=f"{targets.url}/echo/x")
    assert (error.type, error.non_retryable) == ("OutboundBlocked", True)
    assert "127.0.0.1" in error.message and "loopback" in error.message


@pytest.mark.parametrize("depth", [65, 450])
async def test_json_too_deep_for_a_workflow_fails_the_step_at_once(
    http: HttpActivities, targets: Targets, depth: int
) -> None:
    error = await failure(http, url=f"{targets.url}/deep/{depth}")
    assert error.type == "InvalidResponse"
    assert error.non_retryable
    assert "nests more than 64 levels" in error.message


async def test_json_within_the_depth_limit_is_kept(http: HttpActivities, targets: Targets):
    result = await call(http, url=f"{targets.url}/deep/64")
    assert result.is_json


def test_json_too_deep_for_the_decoder_is_refused_too() -> None:
    with pytest.raises(UndecodableBody):
        parse_body(b"[" * 100_000 + b"]" * 100_000, "application/json")


async def test_no_cookie_outlives_the_call_that_received_it(http: HttpActivities, targets: Targets):
    key = unique("c")
    # Run A logs in and is redirected: the redirect hop does not carry the new session.
    first = await call(http, url=f"{targets.url}/login/{key}?next=/echo/{key}")
    assert first.status == 200 and first.body["path"] == f"/echo/{key}"
    # Run B calls the same host, and a webhook is delivered to it: no session either.
    await call(http, url=f"{targets.url}/echo/{key}", headers={"X-Run": "b"})
    delivery = WebhookDelivery(url=f"{targets.url}/hooks/{key}", event={"event": "run.done"})
    assert (await activity_env().run(http.send_webhook, delivery)).status == 200

    assert [request["headers"].get("cookie") for request in targets.state.requests[key]] == [
        None,
        None,
    ]
    assert "cookie" not in targets.state.hooks[key][0]["_headers"]


async def test_a_step_cookie_header_is_sent(http: HttpActivities, targets: Targets):
    result = await call(http, url=f"{targets.url}/echo/{unique('k')}", headers={"Cookie": "a=1"})
    assert result.body["headers"]["cookie"] == "a=1"


async def test_a_redirect_to_another_origin_keeps_keys_and_bodies_home(
    http: HttpActivities, targets: Targets
):
    # localhost and 127.0.0.1 are two origins, though the same test server.
    key = unique("x")
    other = targets.url.replace("127.0.0.1", "localhost")
    moved = f"{targets.url}/redirect/{key}?status=307&to={other}/echo/{key}"
    result = await call(http, url=moved, headers={"X-API-Key": "k", "X-Request-Id": "t"})
    assert result.body["headers"]["x-request-id"] == "t"
    assert "x-api-key" not in result.body["headers"]

    refused = await failure(
        http, method="POST", url=moved, body={"card": "4111"}, send_body=True, label="step 'p'"
    )
    assert (refused.type, refused.non_retryable) == ("OutboundBlocked", True)
    assert refused.message == (
        f"step 'p': refused localhost: a 307 redirect from {targets.url} to {other}"
        " would re-send the POST body to another origin"
    )
    assert [r["method"] for r in targets.state.requests[key]] == ["GET"]  # the POST never did


@pytest.fixture
def worker_logging() -> Iterator[None]:
    """The worker's logging set-up for one test, then the levels as they were."""
    names = ("httpx", "httpcore")
    levels = {name: logging.getLogger(name).level for name in names}
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def test_calls_log_no_urls_at_info_once_the_worker_configures_logging(
    http: HttpActivities, targets: Targets, caplog: pytest.LogCaptureFixture, worker_logging: None
):
    secret_url = f"{targets.url}/echo/{unique('l')}?token=s3cret"
    caplog.set_level(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.NOTSET)
    await call(http, url=secret_url)
    # Left alone, httpx logs the whole URL, token and all: the test can see such records.
    assert any("s3cret" in record.getMessage() for record in caplog.records)

    caplog.clear()
    configure_logging()
    await call(http, url=secret_url)
    http_records = [r for r in caplog.records if r.name.split(".")[0] in ("httpx", "httpcore")]
    assert [r for r in http_records if r.levelno < logging.WARNING] == []
    assert not any("s3cret" in record.getMessage() for record in caplog.records)


async def test_webhooks_are_signed_over_the_bytes_sent(targets: Targets):
    """Standard Webhooks: `webhook-id` is the event id on every attempt, and the signature
    verifies with the spec's own library; a changed body or id does not."""
    hook = unique("signed")
    event = {"event": "step.completed", "event_id": "run-1:3", "sequence": 3, "data": "é ✓"}
    async with build_outbound_client(allow=LOOPBACK, max_redirects=0) as client:
        activities = HttpActivities(
            client, max_response_bytes=1000, webhook_signer=WebhookSigner([WEBHOOK_SECRET])
        )
        receipt = await activity_env().run(
            activities.send_webhook, WebhookDelivery(url=f"{targets.url}/hooks/{hook}", event=event)
        )
    assert (receipt.status, receipt.attempt) == (200, 1)
    [raw] = targets.state.hook_bodies[hook]
    headers = targets.state.hooks[hook][0]["_headers"]
    assert headers["webhook-id"] == headers["idempotency-key"] == "run-1:3"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(WEBHOOK_SECRET).verify(raw, headers) == {**event, "tenant": "default"}
    with pytest.raises(WebhookVerificationError):
        Webhook(WEBHOOK_SECRET).verify(raw.replace(b"step.completed", b"step.failed"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(WEBHOOK_SECRET).verify(raw, {**headers, "webhook-id": "run-1:4"})


async def test_a_tenants_events_name_it_and_carry_its_own_signature(targets: Targets):
    """A receiver checking with its tenant's secret refuses an event another tenant's run
    aimed at it; one sharing the operator's secret reads the tenant in the signed body."""
    operator, acme_secret, beta_secret = (
        "whsec_" + base64.b64encode(letter * 32).decode() for letter in (b"o", b"a", b"b")
    )
    signer = WebhookSigner([operator], {"acme": [acme_secret], "beta": [beta_secret]})
    hook = unique("beta-receiver")
    url = f"{targets.url}/hooks/{hook}"
    async with build_outbound_client(allow=LOOPBACK, max_redirects=0) as client:
        activities = HttpActivities(client, max_response_bytes=1000, webhook_signer=signer)
        for tenant in ("acme", "beta", "gamma"):
            event = {"event": "workflow.completed", "event_id": f"{tenant}-run:1"}
            await activity_env().run(
                activities.send_webhook, WebhookDelivery(url=url, event=event, tenant=tenant)
            )
    from_acme, from_beta, from_gamma = zip(
        targets.state.hook_bodies[hook], targets.state.hooks[hook], strict=True
    )
    receiver = Webhook(beta_secret)
    with pytest.raises(WebhookVerificationError):
        receiver.verify(from_acme[0], from_acme[1]["_headers"])
    assert receiver.verify(from_beta[0], from_beta[1]["_headers"])["tenant"] == "beta"
    # No secret of its own: the operator's, and the body says whose run it was.
    verified = Webhook(operator).verify(from_gamma[0], from_gamma[1]["_headers"])
    assert verified["tenant"] == "gamma"


async def test_webhooks_without_a_secret_are_sent_unsigned(http: HttpActivities, targets: Targets):
    hook = unique("unsigned")
    event = {"event": "workflow.started", "event_id": "run-2:1", "sequence": 1}
    delivery = WebhookDelivery(url=f"{targets.url}/hooks/{hook}", event=event)
    await activity_env().run(http.send_webhook, delivery)
    headers = targets.state.hooks[hook][0]["_headers"]
    assert headers["webhook-id"] == "run-2:1" and "webhook-timestamp" in headers
    assert "webhook-signature" not in headers


async def test_a_webhook_receiver_answering_500_is_retried(http: HttpActivities, targets: Targets):
    hook = unique("down")
    targets.state.hooks_down.add(hook)
    delivery = WebhookDelivery(url=f"{targets.url}/hooks/{hook}", event={"event_id": "r:1"})
    with pytest.raises(ApplicationError) as info:
        await activity_env().run(http.send_webhook, delivery)
    assert info.value.type == "HttpServerError" and not info.value.non_retryable


# --- a DAG step's outputs, written by its call ------------------------------------------------


async def test_a_call_writes_its_step_outputs(targets: Targets, redis_url: str, redis) -> None:
    key = unique("outputs")
    writer = Redis.from_url(redis_url)
    target = OutputTarget(
        keys=[f"t:{key}:summary", f"t:{key}:copy"],
        result_key=f"t:{key}:step_result",
        result_over_bytes=10,
        ttl_seconds=60,
    )
    try:
        async with build_outbound_client(allow=LOOPBACK, max_redirects=3) as client:
            activities = HttpActivities(client, max_response_bytes=100_000, redis=writer)
            result = await call(
                activities,
                method="POST",
                url=f"{targets.url}/openai/{key}",
                body={"text": "t"},
                send_body=True,
                outputs=target,
            )
    finally:
        await close_redis(writer)
    # The outputs get the answer's text; the whole body, larger than 10 bytes and held by no
    # output, goes under the result key.
    assert sorted(result.stored) == sorted([*target.keys, f"t:{key}:step_result"])
    assert await redis.get(f"t:{key}:summary") == '"summary of t"'
    assert await redis.get(f"t:{key}:copy") == '"summary of t"'
    assert '"choices"' in await redis.get(f"t:{key}:step_result")
    assert 0 < await redis.ttl(f"t:{key}:summary") <= 60


async def test_an_unreachable_redis_leaves_the_outputs_to_the_run(targets: Targets) -> None:
    key = unique("noredis")
    down = Redis.from_url("redis://127.0.0.1:1/0")
    try:
        async with build_outbound_client(allow=LOOPBACK, max_redirects=3) as client:
            activities = HttpActivities(client, max_response_bytes=100_000, redis=down)
            result = await call(
                activities,
                url=f"{targets.url}/echo/{key}",
                outputs=OutputTarget(keys=[f"t:{key}:out"], ttl_seconds=60),
            )
    finally:
        await close_redis(down)
    # The call succeeded and is not repeated for the store's sake: nothing is marked stored.
    assert result.status == 200
    assert result.stored == []
    assert targets.state.calls[key] == 1
