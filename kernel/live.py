"""A run's live events: what an activity tells the run's watchers as it happens, beside the
run's own event log and never in its history.

A streamed LLM answer's chunks (`step.delta`) and a call waiting for its rate-limit slot
(`step.waiting_for_rate_limit`) are written by the activity to one Redis stream per run, and
`GET /runs/{id}/events` sends them between the run's own events. Redis numbers a stream's
entries in increasing order, so a stream id is the cursor a client resumes from.

The key and the bounds live here, the one place both writer (`activities.llm.streaming`) and
reader (`gateway.live`) take them from.
"""

from __future__ import annotations

from typing import Final

#: A streamed answer's chunk, and a call that waits for a rate-limit slot.
STEP_DELTA: Final = "step.delta"
WAITING_FOR_RATE_LIMIT: Final = "step.waiting_for_rate_limit"
#: Entries a run's stream keeps (approximately, as XADD MAXLEN ~ trims): about a hundred
#: long answers; a watcher that falls further behind misses the oldest chunks.
LIVE_MAXLEN: Final = 100_000
#: A run's stream outlives its last write by this long, for a watcher that reconnects late.
LIVE_TTL_SECONDS: Final = 86_400


def live_stream_key(workflow_id: str) -> str:
    """The Redis stream of a run, by the id Temporal knows it under (a tenant's prefix kept,
    so two tenants' runs never share one)."""
    return f"run-live:{workflow_id}"
