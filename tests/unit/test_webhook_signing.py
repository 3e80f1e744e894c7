"""Standard Webhooks signatures, checked against the spec's own library (`standardwebhooks`)."""

from __future__ import annotations

import base64
import re
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from activities.http.signing import WebhookSigner, parse_secret
from settings import Settings

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
NEXT_SECRET = "whsec_" + base64.b64encode(b"n" * 32).decode()
BODY = '{"event":"workflow.completed","event_id":"r:9","data":"ünïcode"}'.encode()


def test_a_signature_verifies_and_a_tampered_body_does_not() -> None:
    now = int(time.time())
    headers = WebhookSigner([SECRET]).headers("r:9", now, BODY)
    assert headers["webhook-id"] == "r:9" and headers["webhook-timestamp"] == str(now)
    assert Webhook(SECRET).verify(BODY, headers)["event_id"] == "r:9"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY.replace(b"completed", b"failed"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(NEXT_SECRET).verify(BODY, headers)
    stale = WebhookSigner([SECRET]).headers("r:9", now - 3600, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY, stale)


def test_while_rotating_each_secret_signs_and_either_verifies() -> None:
    headers = WebhookSigner([NEXT_SECRET, SECRET]).headers("r:1", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(SECRET).verify(BODY, headers)
    assert Webhook(NEXT_SECRET).verify(BODY, headers)


def test_no_secret_no_signature() -> None:
    headers = WebhookSigner([]).headers("r:1", 1, BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp"}


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("k" * 40, "starts with 'whsec_'"),
        ("whsec_not base64!", "'whsec_' + base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes"),
    ],
)
def test_malformed_secrets_are_refused_without_repeating_them(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        parse_secret(secret)
    assert secret not in str(info.value)


def test_secrets_come_from_one_setting_and_stay_hidden() -> None:
    settings = Settings(_env_file=None, webhook_signing_secret=f"{NEXT_SECRET}, {SECRET}")  # type: ignore[call-arg]
    assert settings.webhook_signing_secrets == [NEXT_SECRET, SECRET]
    assert SECRET not in repr(settings)
    assert Settings(_env_file=None).webhook_signing_secrets == []  # type: ignore[call-arg]


def test_the_delivery_window_keeps_reading_its_former_name(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).webhook_delivery_window_seconds == 6 * 3600  # type: ignore[call-arg]
    monkeypatch.setenv("WEBHOOK_DELIVERY_TIMEOUT_SECONDS", "120")
    assert Settings(_env_file=None).webhook_delivery_window_seconds == 120  # type: ignore[call-arg]
    monkeypatch.setenv("WEBHOOK_DELIVERY_WINDOW_SECONDS", "7200")
    assert Settings(_env_file=None).webhook_delivery_window_seconds == 7200  # type: ignore[call-arg]


def test_tenants_signing_secrets_come_from_their_own_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entries = f"acme:{NEXT_SECRET}, beta:{SECRET} acme:{SECRET}"
    monkeypatch.setenv("WEBHOOK_TENANT_SIGNING_SECRETS", entries)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.webhook_signing_secrets_by_tenant == {
        "acme": [NEXT_SECRET, SECRET],
        "beta": [SECRET],
    }
    assert SECRET not in repr(settings)
    signer = WebhookSigner([], settings.webhook_signing_secrets_by_tenant)
    assert Webhook(SECRET).verify(BODY, signer.headers("r:1", int(time.time()), BODY, "beta"))
    assert "webhook-signature" not in signer.headers("r:1", 1, BODY, "gamma")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (SECRET, "entry 1 is not tenant:whsec_"),
        (f"acme:{SECRET} beta:whsec_short", "entry 2 (tenant 'beta'): a webhook signing secret"),
    ],
)
def test_a_bad_tenant_signing_secret_is_refused_naming_its_tenant(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        Settings(_env_file=None, webhook_tenant_signing_secrets=entry)  # type: ignore[call-arg]
    assert SECRET not in str(info.value)
