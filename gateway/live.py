"""A run's live events, read for `GET /runs/{id}/events`: the chunks of streamed LLM answers
(`step.delta`) and calls waiting for a rate-limit slot, which activities write to the run's
Redis stream (`kernel.live`) and never to its history.

A client's place in them is the stream id of the last one it got. The event stream sends
every event, the run's own and the live ones, under an SSE id that holds both places,
`<sequence>` or `<sequence>:<stream id>` (`EventCursor`), so a client that reconnects with
`Last-Event-ID` resumes each where it left off and misses no chunk.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from kernel.live import live_stream_key

#: Live events read at once; a watcher far behind catches up over a few polls.
READ_COUNT = 1_000

_CURSOR = re.compile(r"(\d+)(?::(\d+-\d+))?")


@dataclass(frozen=True)
class EventCursor:
    """Where a client is: the run's event sequence, and the live stream's id (`0`: before
    the first)."""

    sequence: int = 0
    live: str = "0"

    @classmethod
    def parse(cls, text: str) -> EventCursor | None:
        """`12` or `12:1733559000000-3`; None for anything else."""
        match = _CURSOR.fullmatch(text.strip())
        if match is None:
            return None
        return cls(int(match[1]), match[2] or "0")

    def __str__(self) -> str:
        return str(self.sequence) if self.live == "0" else f"{self.sequence}:{self.live}"


class LiveEvents:
    """The live events of one run, by the id Temporal knows it under."""

    def __init__(self, redis: Redis, temporal_id: str) -> None:
        self._redis = redis
        self._key = live_stream_key(temporal_id)

    async def after(self, stream_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The events written after `stream_id`, oldest first, with their ids."""
        answer: Any = await self._redis.xread({self._key: stream_id}, count=READ_COUNT)
        # RESP2 answers a list of (key, entries), RESP3 a dict of them.
        streams = answer.items() if isinstance(answer, dict) else answer or []
        events: list[tuple[str, dict[str, Any]]] = []
        for _key, entries in streams:
            for entry_id, fields in entries:
                raw = fields.get(b"data") or fields.get("data")
                ident = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                events.append((ident, json.loads(raw)))
        return events
