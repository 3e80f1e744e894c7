"""Payloads too large for Temporal's history, kept in Redis by content.

Temporal refuses a payload over 2 MB, and a workflow task over 4 MB, so a step's multi-megabyte
response could never be recorded. Every client's data converter (`settings.data_converter`)
hands payloads of `PAYLOAD_INLINE_MAX_BYTES` or more to `RedisBlobDriver` through the SDK's
`ExternalStorage`, and history keeps a small reference in their place.

Content-addressed: a blob's key is the SHA-256 of the serialized payload, so a body recorded
several times (an activity retried, commands encoded again on replay, the same query answered
twice) is stored once. Storing a blob that is already there only refreshes its TTL.

Lifetime: a blob must outlive every history that references it. Its TTL
(`PAYLOAD_BLOB_TTL_SECONDS`) restarts at each store, and must exceed the longest run plus the
namespace's retention (the worker warns at start when it does not). Reading a blob that has
expired raises `PayloadExpired`, naming the blob and the setting, wherever it is read: an
activity attempt or workflow task fails with it (the Web UI shows it), the gateway answers 410.
It is deliberately not a non-retryable `ApplicationError`: raised while a worker replays a
run, the SDK would turn that into a command that contradicts the history, and the message
users see would be a nondeterminism error instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

from redis.asyncio import Redis
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    StorageDriver,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
)

from activities.store.clients import close_redis
from kernel.errors import ErrorType, WorkflowStationError

#: Recorded in every reference history keeps: renaming it orphans the blobs already written.
DRIVER_NAME: Final = "redis"
DEFAULT_PREFIX: Final = "workflow-station:blob:"


class PayloadExpired(WorkflowStationError):
    """A stored payload that is no longer in Redis: what referenced it cannot be read."""

    error_type = ErrorType.PAYLOAD_EXPIRED


def content_key(data: bytes) -> str:
    """The SHA-256 (hex) that names a serialized payload."""
    return hashlib.sha256(data).hexdigest()


class RedisBlobDriver(StorageDriver):
    """Stores serialized payloads under `<prefix><sha256>` with a TTL.

    The claim history keeps is the content hash (and size, for messages), not the Redis key:
    any store that can look a blob up by its hash can serve it. An S3-compatible driver would
    sit beside this one with the same claim (object `<prefix><sha256>`, a bucket lifecycle
    rule in place of the TTL), its own `name()`, and an `ExternalStorage.driver_selector`
    choosing between them; references written by either stay readable as long as both are
    registered.

    Args:
        redis: A client returning bytes (no `decode_responses`).
        ttl_seconds: How long a blob lives after it was last stored.
        prefix: Key prefix of every blob.
    """

    def __init__(self, redis: Redis, *, ttl_seconds: int, prefix: str = DEFAULT_PREFIX) -> None:
        if ttl_seconds <= 0:
            raise ValueError("a blob TTL must be positive")
        self._redis = redis
        self._ttl_seconds = ttl_seconds
        self._prefix = prefix

    def name(self) -> str:
        return DRIVER_NAME

    def type(self) -> str:
        return "workflow-station.redis-blob"

    def key(self, sha256: str) -> str:
        return f"{self._prefix}{sha256}"

    async def store(
        self, context: StorageDriverStoreContext, payloads: Sequence[Payload]
    ) -> list[StorageDriverClaim]:
        """Store each payload unless its blob exists; either way its TTL starts again."""
        serialized = [payload.SerializeToString(deterministic=True) for payload in payloads]
        hashes = [content_key(data) for data in serialized]
        # Refresh first: a blob already stored is not sent again (bodies are megabytes).
        async with self._redis.pipeline(transaction=False) as pipe:
            for sha256 in hashes:
                pipe.expire(self.key(sha256), self._ttl_seconds)
            refreshed = await pipe.execute()
        missing = {
            sha256: data
            for sha256, data, found in zip(hashes, serialized, refreshed, strict=True)
            if not found
        }
        if missing:
            async with self._redis.pipeline(transaction=False) as pipe:
                for sha256, data in missing.items():
                    pipe.set(self.key(sha256), data, ex=self._ttl_seconds)
                await pipe.execute()
        return [
            StorageDriverClaim({"sha256": sha256, "size": str(len(data))})
            for sha256, data in zip(hashes, serialized, strict=True)
        ]

    async def retrieve(
        self, context: StorageDriverRetrieveContext, claims: Sequence[StorageDriverClaim]
    ) -> list[Payload]:
        """The payloads the claims name.

        Raises:
            PayloadExpired: a blob that is gone, or whose content does not match its hash.
        """
        hashes = [claim.claim_data["sha256"] for claim in claims]
        found = await self._redis.mget([self.key(sha256) for sha256 in hashes])
        payloads = []
        for claim, sha256, data in zip(claims, hashes, found, strict=True):
            if isinstance(data, str):
                raise TypeError("the blob store's Redis client must return bytes")
            what = f"payload sha256:{sha256} ({claim.claim_data.get('size', '?')} bytes)"
            if data is None:
                raise PayloadExpired(
                    f"{what} is no longer in Redis ({self.key(sha256)!r}): blobs live"
                    f" PAYLOAD_BLOB_TTL_SECONDS ({self._ttl_seconds} s) after they were last"
                    " stored, so it expired (or Redis lost it); what referenced it cannot be"
                    " read or replayed any more"
                )
            if content_key(data) != sha256:
                raise PayloadExpired(
                    f"{what} in Redis ({self.key(sha256)!r}) does not match its hash: it was"
                    " overwritten; what referenced it cannot be read or replayed any more"
                )
            payloads.append(Payload.FromString(data))
        return payloads

    async def aclose(self) -> None:
        await close_redis(self._redis)
