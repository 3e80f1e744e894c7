"""Inputs of the Redis activities, their names, and how a selection list is read.

I/O-free: workflows import this module, never `activities.store.activities` (redis).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

import pydantic_core
from pydantic import BaseModel, Field

#: Activity names, as workflows schedule them and `StoreActivities` registers them.
READ_SELECTION: Final = "read_selection"
WRITE_OUTPUTS: Final = "write_outputs"
READ_VALUES: Final = "read_values"


def redis_key(tenant: str | None, namespace: str, workflow_id: str, name: str) -> str:
    """Where a run's output or selection `name` lives: `<namespace>:<workflow_id>:<name>`,
    prefixed `<tenant>:` for a tenant's run.

    A `:` or `%` inside the namespace or the id is percent-encoded, so no two runs share a key
    (`ns=a:b, id=c` and `ns=a, id=b:c` would otherwise both write `a:b:c:<name>`).
    """
    parts = [_escape(namespace), _escape(workflow_id), name]
    if tenant is not None:
        parts.insert(0, tenant)
    return ":".join(parts)


def _escape(part: str) -> str:
    return part.replace("%", "%25").replace(":", "%3A")


#: The first segment of every internal Redis key (status, freshness marks, stored payloads,
#: rate counters, running-run slots). Tenant data lives under `<tenant>:` (or, on an open
#: gateway, `<namespace>:`), so neither a tenant nor a namespace may be named this
#: (`settings.service`, `workflows.dag.models`): their keys could otherwise overwrite or read
#: internal ones.
INTERNAL_KEY_ROOT: Final = "workflow-station"


def is_internal_key_root(name: str) -> bool:
    """Whether keys under `<name>:` could meet internal ones."""
    return name == INTERNAL_KEY_ROOT or name.startswith(f"{INTERNAL_KEY_ROOT}:")


#: Where the worker publishes a run's status (`activities.store.status`), by its Temporal
#: workflow id (which names the tenant).
STATUS_KEY_PREFIX: Final = "workflow-station:status:"


def status_key(workflow_id: str) -> str:
    return STATUS_KEY_PREFIX + workflow_id


#: Where the worker marks a running run's published status fresh. A prefix of its own, not a
#: suffix of `status_key`: a workflow id may end in anything, so `<id>` + a suffix could be
#: another run's status key.
FRESH_KEY_PREFIX: Final = "workflow-station:status-fresh:"


def fresh_key(workflow_id: str) -> str:
    """The run's freshness mark: its run id, for `STATUS_FRESH_SECONDS` after its worker last
    published it running (expired by Redis's clock, so no two machines' clocks are compared)."""
    return FRESH_KEY_PREFIX + workflow_id


#: Where result-cache entries live: `<root>:<sha256 of tenant, kind and content>`.
CACHE_KEY_PREFIX = f"{INTERNAL_KEY_ROOT}:result-cache:"


def cache_key(tenant: str | None, kind: str, content: dict[str, Any]) -> str:
    """The result-cache entry of a `kind` of call (`http`, `llm`) deciding its answer from
    `content`, for `tenant`'s runs (None: the open gateway's). Pure, so a rerun's workflow
    can tell by it whether an edited step's request changed (`workflows.dag.rerun`)."""
    text = json.dumps(
        {"tenant": tenant, "kind": kind, "content": content},
        sort_keys=True,
        separators=(",", ":"),
        default=repr,
    )
    return CACHE_KEY_PREFIX + hashlib.sha256(text.encode()).hexdigest()


class ResultCaching(BaseModel):
    """How a call's result is memoized (`activities.store.cache`): for `ttl_seconds`, under a
    key of its tenant and what decides its answer."""

    ttl_seconds: int


class RunSnapshot(BaseModel):
    """A run's status as its worker last published it (or, for a run no worker has picked up
    yet, the gateway that started it): the `get_status` answer's JSON."""

    run_id: str
    status: bytes
    #: Its workflow type (which engine), so a fresh status answers without a describe; empty
    #: in a status written by a worker from before this field (that one is described).
    workflow_type: str = ""


class SelectionRead(BaseModel):
    key: str


class ValuesRead(BaseModel):
    """Values another run stored, by the name they go by here: a rerun's reused values that
    its source kept by reference (`workflows.dag.rerun.stored_references`)."""

    keys: dict[str, str]


class OutputWrite(BaseModel):
    values: dict[str, Any]
    ttl_seconds: int


class OutputTarget(BaseModel):
    """Where a DAG step's call writes the step's outputs itself once it has succeeded, saving
    the run a Redis write of its own (`HttpActivities.call_http`).

    Each of `keys` gets the response's main value; the whole body goes under `result_key`
    when its JSON is over `result_over_bytes` and no output holds that very value (the rule
    of `workflows.dag.references.step_view`, which the workflow checks against `stored`).
    """

    keys: list[str] = Field(default_factory=list)
    result_key: str | None = None
    result_over_bytes: int = 0
    ttl_seconds: int


def output_json(value: Any) -> bytes:
    """An output as it is written to Redis: compact UTF-8 JSON.

    Also what the size in a run's reference to a value counts; pydantic's serializer, an
    order of magnitude faster than `json.dumps` on large values (workflow code measures them).
    """
    return pydantic_core.to_json(value)


def parse_selection(raw: str) -> list[str]:
    """A selection is a JSON list of usids, a JSON string, or comma-separated usids."""
    raw = raw.strip()
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if isinstance(value, list):
        return [str(item).strip() for item in value]
    return [item.strip() for item in str(value).split(",") if item.strip()]
