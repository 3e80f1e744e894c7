"""Payload encryption: keys, round trips, rotation, and what a wrong key or altered data does."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import SecretStr, ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from kernel.codec import (
    ENCODING,
    KEY_ID_METADATA,
    SEALED_PREFIX,
    EncryptionCodec,
    EncryptionKey,
    PayloadDecryptionError,
    parse_keys,
    unseal,
    with_encryption,
)
from settings import DATA_CONVERTER, Settings, data_converter
from workflows.dag.models import DagRunInput


def new_key(key_id: str) -> EncryptionKey:
    return EncryptionKey(key_id, os.urandom(32))


def entry(key: EncryptionKey) -> str:
    return f"{key.id}:{base64.b64encode(key.key).decode()}"


def payload(data: bytes = b'{"token": "tok-123"}') -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


def test_keys_are_read_first_one_first() -> None:
    one, two = new_key("2026-11"), new_key("old_key.1")
    urlsafe = base64.urlsafe_b64encode(two.key).decode().rstrip("=")
    assert parse_keys(f" {entry(one)} , old_key.1:{urlsafe} ") == [one, two]
    assert "key=" not in repr(one) and str(one.key) not in repr(one)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "PAYLOAD_ENCRYPTION_KEY holds no key"),
        ("c2VjcmV0LWtleS1tYXRlcmlhbA==", "entry 1: expected id:base64key"),
        ("bad id:c2VjcmV0LWtleS1tYXRlcmlhbA==", "entry 1: expected id:base64key"),
        ("k1:c2VjcmV0LWtleS1tYXRlcmlhbA*", "entry 1 ('k1'): the key is not base64"),
        ("k1:c2VjcmV0LWtleS1tYXRlcmlhbA==", "entry 1 ('k1'): the key is 19 bytes; AES-256"),
    ],
)
def test_bad_keys_are_refused_without_showing_them(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_keys(text)
    assert message in str(info.value)
    assert "c2VjcmV0" not in str(info.value)


def test_a_key_id_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="entry 2: key id 'k' is given twice"):
        parse_keys(f"{entry(new_key('k'))},{entry(new_key('k'))}")


def test_settings_stop_on_a_bad_key_and_never_echo_it() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, payload_encryption_key="k1:c2VjcmV0LWtleS1tYXRlcmlhbA==")  # type: ignore[call-arg]
    assert "the key is 19 bytes" in str(info.value)
    assert "c2VjcmV0" not in str(info.value)


async def test_encryption_is_on_only_with_a_key() -> None:
    unset = Settings(_env_file=None, payload_encryption_key=None)  # type: ignore[call-arg]
    assert data_converter(unset).payload_codec is None
    key = new_key("k1")
    settings = Settings(_env_file=None, payload_encryption_key=SecretStr(entry(key)))  # type: ignore[call-arg]
    converter = data_converter(settings)
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert converter.payload_converter_class is DATA_CONVERTER.payload_converter_class
    # The pydantic models workflows receive survive the round trip, and travel encrypted.
    run = DagRunInput.model_validate(
        {
            "workflow_id": "w",
            "input_data": {"token": "tok-123"},
            "STEPS_CONFIG": [{"step_name": "a", "usid": "u", "service_url": "https://h/"}],
        }
    )
    [encoded] = await converter.encode([run])
    assert encoded.metadata["encoding"] == ENCODING and b"tok-123" not in encoded.data
    assert await converter.decode([encoded], [DagRunInput]) == [run]
    with pytest.raises(ValueError, match="already has a payload codec"):
        with_encryption(converter, [key])


async def test_round_trip_keeps_metadata_and_data() -> None:
    codec = EncryptionCodec([new_key("k1")])
    originals = [payload(), Payload(metadata={"encoding": b"binary/null"}), payload(b"x" * 10_000)]
    encrypted = await codec.encode(originals)
    for sealed in encrypted:
        assert sealed.metadata["encoding"] == b"binary/encrypted"
        assert sealed.metadata[KEY_ID_METADATA] == b"k1"
        assert b"tok-123" not in sealed.data and b"json/plain" not in sealed.data
    assert await codec.decode(encrypted) == originals
    # A fresh nonce each time: the same payload never encrypts the same way twice.
    again = await codec.encode(originals[:1])
    assert again[0].data != encrypted[0].data


async def test_after_rotation_old_payloads_still_decrypt_and_new_ones_use_the_new_key() -> None:
    old, new = new_key("k1"), new_key("k2")
    before = await EncryptionCodec([old]).encode([payload()])
    rotated = EncryptionCodec([new, old])
    assert await rotated.decode(before) == [payload()]
    [after] = await rotated.encode([payload()])
    assert after.metadata[KEY_ID_METADATA] == b"k2"
    # A worker still on the old list cannot read what the new key wrote, and says why.
    with pytest.raises(PayloadDecryptionError, match="key id 'k2', which PAYLOAD_ENCRYPTION_KEY"):
        await EncryptionCodec([old]).decode([after])


async def test_unencrypted_payloads_pass_through() -> None:
    codec = EncryptionCodec([new_key("k1")])
    assert await codec.decode([payload()]) == [payload()]


async def test_altered_or_relabelled_payloads_do_not_decrypt() -> None:
    one, two = new_key("k1"), new_key("k2")
    codec = EncryptionCodec([one, two])
    [sealed] = await codec.encode([payload()])
    altered = Payload()
    altered.CopyFrom(sealed)
    altered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[KEY_ID_METADATA] = b"k2"
    truncated = Payload()
    truncated.CopyFrom(sealed)
    truncated.data = sealed.data[:5]
    for bad in (altered, relabelled, truncated):
        with pytest.raises(PayloadDecryptionError, match="does not decrypt with key"):
            await codec.decode([bad])
    # The same id under another key (a mistyped key after a rotation) fails the same way.
    with pytest.raises(PayloadDecryptionError, match="does not decrypt with key 'k1'"):
        await EncryptionCodec([new_key("k1")]).decode([sealed])


def test_sealed_values_rotate_like_payloads_and_plain_ones_read_as_they_are() -> None:
    old, new = new_key("k1"), new_key("k2")
    value = b'{"summary": "tok-123"}'
    sealed = EncryptionCodec([old]).seal(value)
    assert sealed.startswith(SEALED_PREFIX) and b"tok-123" not in sealed
    rotated = EncryptionCodec([new, old])
    assert unseal(sealed, rotated) == value
    assert unseal(rotated.seal(value), EncryptionCodec([new])) == value
    assert unseal(value, None) == value  # written before encryption was on
    with pytest.raises(PayloadDecryptionError):
        unseal(sealed, None)
    with pytest.raises(PayloadDecryptionError):
        unseal(sealed, EncryptionCodec([new]))


async def test_with_encryption_failure_messages_are_encoded_too() -> None:
    converter = with_encryption(DATA_CONVERTER, [new_key("k1")])
    failure = Failure()
    await converter.encode_failure(ApplicationError("answered 400: tok-123"), failure)
    assert failure.message == "Encoded failure" and "tok-123" not in str(failure)
    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError) and decoded.message == "answered 400: tok-123"
