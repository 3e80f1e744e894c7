"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

Every delivery carries `webhook-id` (the event's `event_id`, the same on every attempt),
`webhook-timestamp` (Unix seconds of this attempt) and, with a signing secret configured,
`webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` over the exact
bytes sent. Several secrets (rotation) give several space-separated signatures, the first
secret's first.

Secrets are `whsec_` + base64 of the key, as Standard Webhooks libraries expect. They are read
by the worker (`WEBHOOK_SIGNING_SECRET`, and each tenant's own in
`WEBHOOK_TENANT_SIGNING_SECRETS`) and handed to `HttpActivities`: they never travel in a
workflow's input or history.

A tenant with a secret of its own has its events signed with it alone, so a receiver that
checks with its tenant's secret refuses what another tenant's run sends it; the others' are
signed with the operator's. Every body names its tenant (`tenant`) under the signature, for
receivers that share the operator's secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
#: The key sizes Standard Webhooks asks for.
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64


def parse_secret(secret: str) -> bytes:
    """The key of a `whsec_…` secret.

    Raises:
        ValueError: not `whsec_` followed by non-empty base64 (the message never repeats it).
    """
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook signing secret starts with {SECRET_PREFIX!r}")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"a webhook signing secret is {SECRET_PREFIX!r} + base64") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(
            f"a webhook signing secret's key has {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes"
            f" (Standard Webhooks), not {len(key)}"
        )
    return key


class WebhookSigner:
    """Signs webhook bodies with one or more keys (several while a secret is rotated): the
    tenant's own when it has some, else the operator's.

    Args:
        secrets: The operator's `whsec_…` secrets, the one to sign with first.
        tenants: Each tenant's own secrets, likewise ordered.
    """

    def __init__(
        self, secrets: Sequence[str], tenants: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        self._keys = [parse_secret(secret) for secret in secrets]
        self._tenant_keys = {
            tenant: [parse_secret(secret) for secret in owned]
            for tenant, owned in (tenants or {}).items()
        }

    def __repr__(self) -> str:
        return f"WebhookSigner({len(self._keys)} key(s), tenants={sorted(self._tenant_keys)})"

    def headers(
        self, message_id: str, timestamp: int, body: bytes, tenant: str | None = None
    ) -> dict[str, str]:
        """The Standard Webhooks headers for `body` as sent: id, timestamp and, with a key,
        the signatures (with `tenant`'s own keys when it has some)."""
        headers = {ID_HEADER: message_id, TIMESTAMP_HEADER: str(timestamp)}
        keys = self._tenant_keys.get(tenant, self._keys) if tenant is not None else self._keys
        if keys:
            signed = f"{message_id}.{timestamp}.".encode() + body
            headers[SIGNATURE_HEADER] = " ".join(
                "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
                for key in keys
            )
        return headers
