"""The blob store of large payloads against the real Redis: by content, once, with a TTL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
)

from activities.store.blobs import PayloadExpired, RedisBlobDriver
from settings import Settings, close_data_converter, data_converter
from tests.conftest import unique

STORE = StorageDriverStoreContext()
RETRIEVE = StorageDriverRetrieveContext()
DAY = 24 * 3600


def payload(data: bytes) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


@pytest.fixture
async def blobs(redis_url: str) -> AsyncIterator[RedisBlobDriver]:
    driver = RedisBlobDriver(Redis.from_url(redis_url), ttl_seconds=DAY, prefix=unique("b") + ":")
    yield driver
    await driver.aclose()


async def test_a_payload_comes_back_as_it_was_stored(blobs: RedisBlobDriver) -> None:
    stored = [payload(b'"' + b"x" * 300_000 + b'"'), payload(b"[1, 2]")]
    claims = await blobs.store(STORE, stored)
    assert [set(claim.claim_data) for claim in claims] == [{"sha256", "size"}] * 2
    assert await blobs.retrieve(RETRIEVE, claims) == stored


async def test_each_body_is_stored_once_and_storing_it_again_refreshes_its_ttl(
    blobs: RedisBlobDriver, redis: Redis
) -> None:
    body = payload(b'{"doc": "' + b"y" * 100_000 + b'"}')
    [first, again] = await blobs.store(STORE, [body, body])
    assert first == again
    key = blobs.key(first.claim_data["sha256"])
    assert await redis.keys(blobs.key("*")) == [key]
    await redis.expire(key, 60)
    [later] = await blobs.store(STORE, [body])
    assert later == first
    assert await redis.ttl(key) > DAY - 60


async def test_an_expired_blob_is_a_clear_non_retryable_error(
    blobs: RedisBlobDriver, redis: Redis
) -> None:
    [claim] = await blobs.store(STORE, [payload(b'"gone soon"')])
    await redis.delete(blobs.key(claim.claim_data["sha256"]))
    with pytest.raises(PayloadExpired) as info:
        await blobs.retrieve(RETRIEVE, [claim])
    assert info.value.error_type == "PayloadExpired"
    assert "PAYLOAD_BLOB_TTL_SECONDS" in str(info.value)
    assert claim.claim_data["sha256"] in str(info.value)


async def test_a_blob_whose_content_does_not_match_its_hash_is_refused(
    blobs: RedisBlobDriver, redis: Redis
) -> None:
    [claim] = await blobs.store(STORE, [payload(b'"original"')])
    await redis.set(blobs.key(claim.claim_data["sha256"]), b"tampered")
    with pytest.raises(PayloadExpired, match="does not match its hash"):
        await blobs.retrieve(RETRIEVE, [claim])


async def test_an_unknown_claim_is_refused(blobs: RedisBlobDriver) -> None:
    with pytest.raises(PayloadExpired, match="no longer in Redis"):
        await blobs.retrieve(RETRIEVE, [StorageDriverClaim({"sha256": "0" * 64})])


async def test_the_converter_keeps_small_payloads_inline_and_large_ones_by_reference(
    redis_url: str, redis: Redis
) -> None:
    prefix = unique("conv") + ":"
    settings = Settings(
        _env_file=None,
        redis_url=redis_url,
        payload_inline_max_bytes=1024,
        payload_blob_prefix=prefix,
    )
    converter: DataConverter = data_converter(settings)
    small, large = {"n": 1}, {"text": "z" * 5000}
    encoded = await converter.encode([small, large])
    assert encoded[0].data == b'{"n":1}'
    assert b"z" * 100 not in encoded[1].SerializeToString()
    assert len(encoded[1].SerializeToString()) < 1024
    assert len(await redis.keys(prefix + "*")) == 1
    assert await converter.decode(encoded, [dict, dict]) == [small, large]
    await close_data_converter(converter)
