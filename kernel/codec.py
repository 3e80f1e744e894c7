"""Payload encryption: an AES-256-GCM `PayloadCodec` with key ids, so keys can be rotated.

Every payload a Temporal client writes (workflow inputs and results, activity inputs and
results, query answers, failure details, memos) goes through the data converter's codec, so
with `PAYLOAD_ENCRYPTION_KEY` set the server and its database hold ciphertext only. The Web UI
and the `temporal` CLI show plain payloads through the gateway's codec endpoint
(`gateway/routes/codec.py`), which runs this same codec.

``PAYLOAD_ENCRYPTION_KEY`` is a comma-separated list of ``id:key`` entries, each key 32 bytes
in base64 (``python -c "import os, base64; print(base64.b64encode(os.urandom(32)).decode())"``).
The first entry encrypts; every entry decrypts. To rotate, put a new entry first and keep the
old ones until no run that could still be read needs them.

An encrypted payload is::

    metadata: {"encoding": "binary/encrypted", "encryption-key-id": "<id>"}
    data:     12-byte random nonce || AES-256-GCM(key, nonce, the original Payload message,
                                                  associated data "workflow-station:<id>")

The original payload (its own metadata and data) is serialized whole, so its encoding comes
back on decode. The key id is authenticated too: a payload re-labelled with another id fails
to decrypt. Payloads that are not encrypted pass through decode unchanged, so runs started
before encryption was turned on still complete.

Failures too: `with_encryption` also gives the converter Temporal's encoding failure
converter, which moves each failure's message and stack trace into an encrypted payload of
its own (history shows `Encoded failure`); clients decode them as they decode results.

Values written beside Temporal (a DAG step's outputs and large results in Redis) are sealed
with the same keys (`EncryptionCodec.seal`, `unseal`): an encrypted payload after the
`SEALED_PREFIX` marker, so values written before encryption was turned on read as they are.

Not encrypted, by Temporal's design: search attributes (they are indexed), workflow and
activity ids and type names, and task queues; which is why no message holds a secret or a
URL's query either (`activities.http.secrets`, `kernel.redact`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: What starts a sealed value: JSON text never starts with a NUL byte, so a value written
#: before encryption was on is told apart.
SEALED_PREFIX = b"\x00workflow-station:sealed\x00"


@dataclass(frozen=True)
class EncryptionKey:
    """One `id:key` entry of `PAYLOAD_ENCRYPTION_KEY`; `repr` never shows the key."""

    id: str
    key: bytes = field(repr=False)


class PayloadDecryptionError(ValueError):
    """An encrypted payload that cannot be decrypted with the keys at hand."""


def parse_keys(text: str) -> list[EncryptionKey]:
    """Read `PAYLOAD_ENCRYPTION_KEY`: comma-separated `id:base64key` entries, first one first.

    Raises:
        ValueError: No entry, a malformed entry, a key that is not 32 bytes of base64, or an
            id given twice. The message names the entry by position and id, never its key.
    """
    keys: list[EncryptionKey] = []
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries:
        raise ValueError("PAYLOAD_ENCRYPTION_KEY holds no key (expected id:base64key,...)")
    for position, entry in enumerate(entries, start=1):
        key_id, colon, encoded = entry.partition(":")
        key_id = key_id.strip()
        where = f"PAYLOAD_ENCRYPTION_KEY entry {position}"
        if not colon or not _KEY_ID.fullmatch(key_id):
            raise ValueError(
                f"{where}: expected id:base64key, the id made of letters, digits, '.', '_'"
                " and '-' (at most 64)"
            )
        try:
            key = base64.b64decode(_padded(encoded.strip()), altchars=_altchars(encoded))
        except (binascii.Error, ValueError):
            raise ValueError(f"{where} ({key_id!r}): the key is not base64") from None
        if len(key) != KEY_BYTES:
            raise ValueError(
                f"{where} ({key_id!r}): the key is {len(key)} bytes; AES-256 needs {KEY_BYTES}"
            )
        if any(known.id == key_id for known in keys):
            raise ValueError(f"{where}: key id {key_id!r} is given twice")
        keys.append(EncryptionKey(key_id, key))
    return keys


def _padded(encoded: str) -> str:
    return encoded + "=" * (-len(encoded) % 4)


def _altchars(encoded: str) -> bytes | None:
    # The URL-safe alphabet is accepted too (`-` and `_` for `+` and `/`).
    return b"-_" if "-" in encoded or "_" in encoded else None


class EncryptionCodec(PayloadCodec):
    """Encrypts every payload with the first key, decrypts with whichever key it names.

    Args:
        keys: At least one key; the first encrypts.
    """

    def __init__(self, keys: Sequence[EncryptionKey]) -> None:
        if not keys:
            raise ValueError("an EncryptionCodec needs at least one key")
        self._key_id = keys[0].id
        self._ciphers = {key.id: AESGCM(key.key) for key in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._key_id].encrypt(
            nonce, payload.SerializeToString(), _associated_data(self._key_id)
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: self._key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        """The original payload; one that is not encrypted comes back as it is.

        Raises:
            PayloadDecryptionError: Its key id is not among the keys, or the data does not
                decrypt (another key under the same id, or altered data).
        """
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode("utf-8", "replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(
                f"payload encrypted with key id {key_id!r}, which PAYLOAD_ENCRYPTION_KEY does"
                f" not hold (it holds {', '.join(map(repr, self._ciphers))})"
            )
        data = payload.data
        try:
            if len(data) < NONCE_BYTES:
                raise InvalidTag
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], _associated_data(key_id))
        except InvalidTag:
            raise PayloadDecryptionError(
                f"payload does not decrypt with key {key_id!r} (a different key under that id,"
                " or altered data)"
            ) from None
        return Payload.FromString(plain)

    def seal(self, data: bytes) -> bytes:
        """`data` (a value stored outside Temporal) encrypted as a payload is, marked sealed."""
        payload = Payload(metadata={"encoding": b"binary/plain"}, data=data)
        return SEALED_PREFIX + self.encrypt(payload).SerializeToString()


def unseal(data: bytes, codec: EncryptionCodec | None) -> bytes:
    """The value `EncryptionCodec.seal` sealed; one that is not sealed comes back as it is.

    Raises:
        PayloadDecryptionError: A sealed value and no codec, or not one of its keys.
    """
    if not data.startswith(SEALED_PREFIX):
        return data
    if codec is None:
        raise PayloadDecryptionError(
            "the value is encrypted and PAYLOAD_ENCRYPTION_KEY is not set here"
        )
    return codec.decrypt(Payload.FromString(data[len(SEALED_PREFIX) :])).data


def _associated_data(key_id: str) -> bytes:
    return f"workflow-station:{key_id}".encode()


def with_encryption(converter: DataConverter, keys: Sequence[EncryptionKey]) -> DataConverter:
    """`converter` with `EncryptionCodec(keys)` as its payload codec, and failures' messages
    and stack traces encoded into it too (Temporal's encoding failure converter); the payload
    converter and external storage stay as they are.

    A failure encoded this way shows as `Encoded failure` in history; every client built with
    this converter (gateway, CLI, worker) reads the message back, and the Web UI and the
    `temporal` CLI through the codec endpoint.

    Raises:
        ValueError: `converter` already has a payload codec (codecs do not stack here).
    """
    if converter.payload_codec is not None:
        raise ValueError("the data converter already has a payload codec")
    return dataclasses.replace(
        converter,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
