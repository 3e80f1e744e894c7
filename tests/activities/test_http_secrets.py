"""Secrets in the HTTP activity: filled in just before sending, never in what it returns,
raises or logs; URLs redacted in every message it builds."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.http.activities import HttpActivities
from activities.http.models import HttpCall, HttpResult, WebhookDelivery
from activities.http.outbound import build_outbound_client
from activities.http.secrets import Secrets
from tests.conftest import LOOPBACK, Targets, activity_env, unique
from tests.fakes.targets import free_port

TOKEN = "tok-9Qx/+7=zz"
OTHER = "other-Secret-value"


@pytest.fixture
async def http() -> AsyncIterator[HttpActivities]:
    secrets = Secrets({"API_TOKEN": TOKEN, "OTHER": OTHER})
    async with build_outbound_client(allow=LOOPBACK, max_redirects=3) as client:
        yield HttpActivities(client, max_response_bytes=10_000, secrets=secrets)


async def call(activities: HttpActivities, **fields: Any) -> HttpResult:
    return await activity_env().run(activities.call_http, HttpCall(**fields))


async def failure(activities: HttpActivities, **fields: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await call(activities, **fields)
    assert info.value.__cause__ is None  # a library exception's text would travel with it
    return info.value


def assert_clean(error: ApplicationError) -> None:
    text = f"{error.message} {error.details}"
    assert TOKEN not in text and OTHER not in text


async def test_secrets_reach_the_target_in_url_header_query_and_body(
    http: HttpActivities, targets: Targets
):
    key = unique("s")
    result = await call(
        http,
        method="POST",
        url=f"{targets.url}/record/{key}/{{{{secrets.OTHER}}}}",
        headers={"Authorization": "Bearer {{secrets.API_TOKEN}}"},
        query={"token": "{{ secrets.API_TOKEN }}"},
        body={"key": "{{secrets.OTHER}}", "data": "{{secrets.API_TOKEN}} in a body"},
        send_body=True,
        secret_names=["API_TOKEN", "OTHER"],
    )
    [seen] = targets.state.requests[key]
    assert seen["path"] == f"/record/{key}/{OTHER}"
    assert seen["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert seen["query"] == {"token": TOKEN}
    assert seen["json"] == {"key": OTHER, "data": f"{TOKEN} in a body"}
    # What the activity returns (history) holds none of it, not even the final URL.
    assert TOKEN not in result.model_dump_json() and OTHER not in result.model_dump_json()
    assert result.url == f"{targets.url}/record/{key}/***?token=***"


async def test_a_placeholder_the_call_does_not_name_is_sent_as_data(
    http: HttpActivities, targets: Targets
):
    key = unique("d")
    await call(
        http,
        method="POST",
        url=f"{targets.url}/record/{key}",
        body={"echoed": "{{secrets.OTHER}}", "mine": "{{secrets.API_TOKEN}}"},
        send_body=True,
        secret_names=["API_TOKEN"],
    )
    assert targets.state.requests[key][0]["json"] == {"echoed": "{{secrets.OTHER}}", "mine": TOKEN}


async def test_an_unknown_secret_fails_at_once_naming_it(http: HttpActivities, targets: Targets):
    key = unique("u")
    error = await failure(
        http,
        url=f"{targets.url}/record/{key}",
        headers={"X": "{{secrets.NOPE}}", "Y": "{{secrets.API_TOKEN}}"},
        secret_names=["API_TOKEN", "NOPE"],
        label="step 'a'",
    )
    assert (error.type, error.non_retryable) == ("UnknownSecret", True)
    assert error.message == (
        "step 'a': no value for {{secrets.NOPE}} for tenant 'default' on this worker (add it to"
        " the tenant's section of SECRETS_FILE, or share it as SECRET_SHARED_<NAME>)"
    )
    assert targets.state.calls[key] == 0


async def test_error_messages_name_the_url_as_scheduled_and_redacted(
    http: HttpActivities, targets: Targets
):
    # The target echoes the secret back in a 4xx body; our own message adds nothing, and what
    # the body repeats of a known secret is masked too.
    error = await failure(
        http,
        method="POST",
        url=f"{targets.url}/status/{unique('e')}/401?token={{{{secrets.API_TOKEN}}}}&page=2",
        headers={"Authorization": "Bearer {{secrets.API_TOKEN}}"},
        secret_names=["API_TOKEN"],
        label="step 'e'",
    )
    assert error.message.startswith(f"step 'e': POST {targets.url}/status/")
    assert "?token=***&page=*** answered 401 Unauthorized" in error.message
    assert_clean(error)

    closed = f"http://user:pa55@127.0.0.1:{free_port()}/x?sig={{{{secrets.API_TOKEN}}}}"
    error = await failure(http, url=closed, secret_names=["API_TOKEN"], label="step 't'")
    assert error.type == "TransportError"
    assert error.message.startswith("step 't': GET http://***@127.0.0.1:")
    assert "pa55" not in error.message and "?sig=***" in error.message
    assert_clean(error)


async def test_a_target_echoing_a_secret_in_an_error_body_has_it_masked(
    http: HttpActivities, targets: Targets
):
    error = await failure(
        http,
        url=f"{targets.url}/reflect/403",
        headers={"X-Token": "{{secrets.OTHER}}"},
        query={"t": "{{secrets.API_TOKEN}}"},
        secret_names=["API_TOKEN", "OTHER"],
    )
    assert error.type == "HttpClientError"
    assert '"x-token": "***"' in error.message and '"t": "***"' in error.message
    assert_clean(error)


async def test_a_cross_origin_redirect_drops_headers_that_hold_secrets(
    http: HttpActivities, targets: Targets
):
    key = unique("r")
    other = targets.url.replace("127.0.0.1", "localhost")
    same = f"{targets.url}/redirect/{key}?to=/record/{key}"
    cross = f"{targets.url}/redirect/{key}?to={other}/record/{key}"
    headers = {"X-Custom-Auth": "t={{secrets.API_TOKEN}}", "X-Request-Id": "t"}
    await call(http, url=same, headers=headers, secret_names=["API_TOKEN"])
    await call(http, url=cross, headers=headers, secret_names=["API_TOKEN"])
    kept, dropped = targets.state.requests[key]
    assert kept["headers"]["x-custom-auth"] == f"t={TOKEN}"  # same origin: kept
    assert "x-custom-auth" not in dropped["headers"]  # not a listed key header, yet dropped
    assert dropped["headers"]["x-request-id"] == "t"


async def test_webhook_failures_never_repeat_the_webhook_url(targets: Targets):
    async with build_outbound_client(allow=LOOPBACK) as client:
        http = HttpActivities(client, max_response_bytes=1000)
        url = f"http://127.0.0.1:{free_port()}/services/T0/B0/hook-s3cret?sig=abc"
        delivery = WebhookDelivery(url=url, event={"event": "step.started", "event_id": "1"})
        with pytest.raises(ApplicationError) as info:
            await activity_env().run(http.send_webhook, delivery)
    message = info.value.message
    assert message.startswith("webhook step.started: POST http://127.0.0.1:")
    assert "/***?sig=***" in message
    assert "hook-s3cret" not in message and "services" not in message and "abc" not in message


async def test_nothing_the_activity_logs_holds_a_secret(
    http: HttpActivities, targets: Targets, caplog: pytest.LogCaptureFixture
):
    logging.getLogger("httpx").setLevel(logging.WARNING)  # as the worker sets it
    caplog.set_level(logging.DEBUG)
    await call(
        http,
        url=f"{targets.url}/record/{unique('l')}?sig={{{{secrets.API_TOKEN}}}}",
        secret_names=["API_TOKEN"],
    )
    await failure(
        http,
        url=f"{targets.url}/status/{unique('l')}/500?sig={{{{secrets.API_TOKEN}}}}",
        secret_names=["API_TOKEN"],
    )
    assert caplog.records  # the failure was logged, for one
    assert TOKEN not in caplog.text and "tok-9Qx%2F" not in caplog.text


async def test_an_echoed_secret_is_redacted_before_the_result_leaves(
    http: HttpActivities, targets: Targets
):
    """A request-inspection service answers with what it got: the values go, the structure
    stays, and the target did get them."""
    key = unique("echo")
    result = await call(
        http,
        method="POST",
        url=f"{targets.url}/echo/{key}?t={{{{secrets.OTHER}}}}",
        headers={"Authorization": "Bearer {{secrets.API_TOKEN}}"},
        body={"key": "{{secrets.API_TOKEN}}"},
        send_body=True,
        secret_names=["API_TOKEN", "OTHER"],
    )
    assert targets.state.requests[key][0]["json"] == {"key": TOKEN}
    assert result.body["json"] == {"key": "***"}
    assert result.body["headers"]["authorization"] == "Bearer ***"
    assert result.body["query"] == {"t": "***"}
    assert TOKEN not in result.model_dump_json() and OTHER not in result.model_dump_json()


async def test_a_tenant_cannot_use_another_tenants_secret(targets: Targets):
    secrets = Secrets(tenants={"acme": {"MINE": "acme-value"}, "beta": {"STRIPE": "beta-value"}})
    key = unique("cross")
    async with build_outbound_client(allow=LOOPBACK) as client:
        activities = HttpActivities(client, max_response_bytes=10_000, secrets=secrets)
        with pytest.raises(ApplicationError) as info:
            await call(
                activities,
                url=f"{targets.url}/record/{key}",
                headers={"X-Key": "{{secrets.STRIPE}}"},
                secret_names=["STRIPE"],
                tenant="acme",
            )
    assert (info.value.type, info.value.non_retryable) == ("UnknownSecret", True)
    assert "beta" not in info.value.message
    assert targets.state.calls[key] == 0
