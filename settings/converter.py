"""The payload converter every Temporal client, test environment and replayer uses.

`DATA_CONVERTER` carries pydantic models as JSON; `data_converter(settings)` adds what the
settings ask for: large payloads stored in Redis by reference, and payload encryption.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter
from redis.asyncio import Redis
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    ExternalStorage,
    JSONPlainPayloadConverter,
)

from activities.store.blobs import RedisBlobDriver
from kernel.codec import with_encryption
from kernel.errors import PayloadUndecodable
from settings.config import Settings

#: A Redis command of the blob store that takes longer fails the workflow task or activity
#: (which Temporal retries) instead of holding it up.
BLOB_REDIS_TIMEOUT_SECONDS = 30.0

#: Type adapters of the payload converter, shared by all its instances (at most this many).
_type_adapter = lru_cache(maxsize=1024)(TypeAdapter)


class SharedAdaptersJSONConverter(PydanticJSONPlainPayloadConverter):
    """Temporal's pydantic JSON converter, its type adapters cached once per process.

    The SDK's own caches them per converter instance, and every workflow run builds its own
    instance in its sandbox: each run rebuilt the adapter of its input model (13 % of the
    worker's Python time on one-step runs once the sandbox no longer re-imported the
    workflow modules, bench/profile.md). The types are the same objects in every
    run because the modules defining them are passed through the tests' sandbox
    (`worker.SANDBOXED_RUNNER`) and production runs no sandbox (`worker.WORKFLOW_RUNNER`); a
    type re-imported per run would take a cache entry per run.
    """

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        """The payload as `type_hint`.

        Raises:
            PayloadUndecodable: JSON the parser cannot read (nested past its recursion
                limit) or that does not fit the type.
        """
        try:
            adapter = _type_adapter(type_hint if type_hint is not None else Any)
        except TypeError:  # an unhashable hint: the SDK's own path
            return super().from_payload(payload, type_hint)
        try:
            return adapter.validate_json(payload.data)
        except ValueError as exc:  # pydantic's ValidationError, JSON errors included
            raise PayloadUndecodable(
                f"a payload of {len(payload.data)} bytes cannot be decoded as"
                f" {getattr(type_hint, '__name__', type_hint)}: {str(exc)[:300]}"
            ) from exc


class PayloadConverter(CompositePayloadConverter):
    """`temporalio.contrib.pydantic.PydanticPayloadConverter`, with shared type adapters."""

    def __init__(self) -> None:
        json_converter = SharedAdaptersJSONConverter()
        super().__init__(
            *(
                json_converter if isinstance(converter, JSONPlainPayloadConverter) else converter
                for converter in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


#: The payload converter of every Temporal client, test environment and replayer: the pydantic
#: models users POST are the models workflows and activities receive, so all must agree on it.
#: `data_converter(settings)` adds what the settings ask for: external storage of large
#: payloads, and payload encryption.
DATA_CONVERTER = DataConverter(payload_converter_class=PayloadConverter)


def data_converter(settings: Settings) -> DataConverter:
    """`DATA_CONVERTER` with what `settings` add to it: large payloads stored outside history
    in the settings' Redis, and payload encryption when PAYLOAD_ENCRYPTION_KEY is set.

    Every client, test environment and replayer uses one: any of them may meet a reference to
    a stored payload (in a result, a query answer, a failure's details) and must read it.
    Payloads below `PAYLOAD_INLINE_MAX_BYTES` stay inline and unencrypted payloads pass
    through, so histories recorded before either decode as they always did.
    """
    redis = Redis.from_url(
        settings.effective_redis_url,
        socket_timeout=BLOB_REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=BLOB_REDIS_TIMEOUT_SECONDS,
    )
    driver = RedisBlobDriver(
        redis, ttl_seconds=settings.payload_blob_ttl_seconds, prefix=settings.payload_blob_prefix
    )
    converter = dataclasses.replace(
        DATA_CONVERTER,
        external_storage=ExternalStorage(
            drivers=[driver], payload_size_threshold=settings.payload_inline_max_bytes
        ),
    )
    keys = settings.encryption_keys
    return with_encryption(converter, keys) if keys else converter


async def close_data_converter(converter: DataConverter) -> None:
    """Close the Redis connections of a converter `data_converter` built."""
    storage = converter.external_storage
    for driver in storage.drivers if storage is not None else []:
        if isinstance(driver, RedisBlobDriver):
            await driver.aclose()
