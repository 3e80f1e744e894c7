"""Redis I/O for the DAG runner: selection lists in, step outputs out.

With payload encryption on, outputs are sealed with its keys (`kernel.codec`) before they
are written: Redis holds no more of a run's data in the clear than Temporal does.
"""

from __future__ import annotations

import json
from typing import Any

# redis loads these on its first command; loading them with the worker keeps that import out
# of a workflow activation running at the same moment (the sandbox would warn about it).
import redis._defaults  # noqa: F401
import redis.asyncio.client  # noqa: F401
import redis.observability.recorder  # noqa: F401
from redis.asyncio import Redis
from temporalio import activity

from activities.store.models import (
    READ_SELECTION,
    READ_VALUES,
    WRITE_OUTPUTS,
    OutputWrite,
    SelectionRead,
    ValuesRead,
    output_json,
    parse_selection,
)
from kernel.codec import EncryptionCodec, unseal


async def write_values(
    redis: Redis, values: dict[str, Any], ttl_seconds: int, codec: EncryptionCodec | None = None
) -> None:
    """Write each value as JSON under its full key, with the TTL, in one round trip; sealed
    with `codec` when encryption is on."""
    async with redis.pipeline(transaction=False) as pipe:
        for key, value in values.items():
            data = output_json(value)
            pipe.set(key, codec.seal(data) if codec is not None else data, ex=ttl_seconds)
        await pipe.execute()


class StoreActivities:
    """Args:
    redis: Where selections are read and outputs written.
    codec: Seals outputs (PAYLOAD_ENCRYPTION_KEY); none: written as JSON.
    """

    def __init__(self, redis: Redis, codec: EncryptionCodec | None = None) -> None:
        self._redis = redis
        self._codec = codec

    @activity.defn(name=READ_SELECTION)
    async def read_selection(self, read: SelectionRead) -> list[str] | None:
        """The usids selected under `read.key`, or None when the key is absent."""
        raw = await self._redis.get(read.key)
        if raw is None:
            return None
        return parse_selection(raw.decode() if isinstance(raw, bytes) else raw)

    @activity.defn(name=READ_VALUES)
    async def read_values(self, read: ValuesRead) -> dict[str, Any]:
        """Each stored value, parsed, by its name; a key that has expired is left out."""
        names = sorted(read.keys)
        raw = await self._redis.mget([read.keys[name] for name in names]) if names else []
        values = {}
        for name, data in zip(names, raw, strict=True):
            if data is not None:
                sealed = data.encode() if isinstance(data, str) else data
                values[name] = json.loads(unseal(sealed, self._codec))
        return values

    @activity.defn(name=WRITE_OUTPUTS)
    async def write_outputs(self, write: OutputWrite) -> None:
        """Write each output as JSON under its full key, with the configured TTL."""
        await write_values(self._redis, write.values, write.ttl_seconds, self._codec)
