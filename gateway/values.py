"""The whole values behind a DAG run's references (`workflows.dag.references`).

A run's status shows a step result or output over `VALUE_INLINE_MAX_BYTES` as
`{"$ref": "/runs/<id>/outputs/<name>", "size": …, "type": …}`; these read what the reference
names, from the Redis keys the workflow wrote (`<namespace>:<workflow_id>:<name>`), and answer
the stored JSON as it is, without parsing it again (unsealed first when the worker encrypted
it, `kernel.codec.unseal`). A value small enough to be inline comes from the run's status.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse
from redis.asyncio import Redis

from activities.store.models import redis_key
from gateway.errors import RunNotFound, ValueExpired
from gateway.runs.dag import DAG_RUNS
from gateway.runs.service import RunStatusService
from kernel.codec import EncryptionCodec, unseal
from kernel.errors import ErrorType, WorkflowStationError
from kernel.search import NAMESPACE
from workflows.dag.models import DagRunResult
from workflows.dag.references import (
    REF,
    is_reference,
    output_route,
    result_route,
    result_variable,
)


def _json(raw: bytes) -> Response:
    return Response(content=raw, media_type="application/json")


def _gone(what: str) -> ValueExpired:
    return ValueExpired(
        f"{what} is no longer stored: values stay in Redis OUTPUT_TTL_SECONDS after the step"
        " finished",
    )


class RunValueService:
    """Step outputs and results of DAG runs, by the routes their references name."""

    def __init__(
        self, runs: RunStatusService, redis: Redis, codec: EncryptionCodec | None = None
    ) -> None:
        self.runs = runs
        self.redis = redis
        self.codec = codec

    def _key(self, namespace: str, workflow_id: str, name: str) -> str:
        return redis_key(self.runs.tenant.redis_scope, namespace, workflow_id, name)

    async def _stored(self, namespace: str, workflow_id: str, name: str) -> bytes | None:
        """The JSON stored under the run's `name`, unsealed; None when absent."""
        raw = await self.redis.get(self._key(namespace, workflow_id, name))
        if raw is None:
            return None
        data = raw.encode() if isinstance(raw, str) else raw
        return unseal(data, self.codec)

    async def output(self, workflow_id: str, name: str) -> Response:
        """`GET /runs/{workflow_id}/outputs/{name}`."""
        description = await self.runs.describe(workflow_id, "workflow_id")
        if description.workflow_type != DAG_RUNS.workflow_type:
            raise RunNotFound(f"{workflow_id!r} is not a DAG pipeline run")
        namespace = description.typed_search_attributes.get(NAMESPACE)
        if namespace is not None:
            raw = await self._stored(namespace, workflow_id, name)
            if raw is not None:
                return _json(raw)
        status = await self.runs.read(DAG_RUNS, workflow_id, description)
        if namespace is None:
            # Started without the search attributes (e.g. with the `temporal` CLI).
            raw = await self._stored(status.namespace, workflow_id, name)
            if raw is not None:
                return _json(raw)
        if name not in status.outputs:
            produced = sorted(status.outputs)
            raise RunNotFound(
                f"run {workflow_id!r} has no output {name!r} (yet); its outputs: {produced}",
            )
        value = status.outputs[name]
        if _refers_to(value, output_route(workflow_id, name)):
            raise _gone(f"output {name!r} of run {workflow_id!r}")
        return JSONResponse(value)

    async def step_result(self, workflow_id: str, step_name: str) -> Response:
        """`GET /runs/{workflow_id}/steps/{step}/result`: the step's whole parsed response."""
        status = await self.runs.status(workflow_id)
        if not isinstance(status, DagRunResult):
            raise RunNotFound(f"{workflow_id!r} is not a DAG pipeline run")
        step = status.steps.get(step_name)
        if step is None:
            raise RunNotFound(f"run {workflow_id!r} has no step {step_name!r}")
        what = f"the result of step {step_name!r} of run {workflow_id!r}"
        if step.status != "completed":
            raise RunNotFound(f"{what}: the step is {step.status}, it has no result")
        # Stored under the step's own route, or shared with an output that holds it.
        names = {output_route(workflow_id, output): output for output in step.outputs}
        names[result_route(workflow_id, step_name)] = result_variable(step_name)
        name = next((names[route] for route in names if _refers_to(step.result, route)), None)
        if name is None:
            return JSONResponse(step.result)
        raw = await self._stored(status.namespace, workflow_id, name)
        if raw is None:
            raise _gone(what)
        return _json(raw)


def _refers_to(value: Any, route: str) -> bool:
    """`value` is our reference to `route` (not a user's JSON that happens to hold a `$ref`)."""
    return is_reference(value) and value[REF] == route


def is_payload_expired(exc: Exception) -> bool:
    """A stored payload the run's history references has expired from Redis."""
    return isinstance(exc, WorkflowStationError) and exc.error_type == ErrorType.PAYLOAD_EXPIRED
