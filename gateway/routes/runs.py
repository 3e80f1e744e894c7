"""Runs of either engine, by the id the client knows them by: `GET /runs` (a list),
`GET /runs/{workflow_id}` (one run's state), its live events, the whole values its
references name, and `POST /runs/{workflow_id}/cancel`. Runs are started by their engine's
routes (`gateway.routes.dag`, `gateway.routes.instructions`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Query, Response
from sse_starlette import EventSourceResponse
from temporalio.client import WorkflowExecutionStatus

from gateway.deps import RedisDep, RunStatusDep, RunValuesDep, SharedPollsDep, StreamSlotsDep
from gateway.errors import InvalidRequest, RunConflict, RunNotFound
from gateway.events import PING_SECONDS, RunEventStream
from gateway.live import EventCursor, LiveEvents
from gateway.runs.dag import DAG_RUNS
from gateway.runs.instructions import INSTRUCTION_RUNS, InstructionRunView
from gateway.runs.listing import LISTED_STATES, MAX_LISTED, RunSummary
from workflows.dag.models import DagRunResult

router = APIRouter(tags=["runs"])

JSON_CONTENT: dict[str, Any] = {"application/json": {"schema": {}}}


# Declared before `GET /runs/{workflow_id:path}`, which would take these paths for ids.
@router.get(
    "/runs/{workflow_id:path}/outputs/{name:path}",
    response_class=Response,
    responses={
        200: {"description": "the output's whole value, as JSON", "content": JSON_CONTENT},
        404: {"description": "no such run or output (yet)"},
        410: {"description": "the value has expired (OUTPUT_TTL_SECONDS)"},
    },
)
async def get_run_output(workflow_id: str, name: str, values: RunValuesDep) -> Response:
    """A step output's whole value, however large: what its `$ref` in the run's status names."""
    return await values.output(workflow_id, name)


@router.get(
    "/runs/{workflow_id:path}/steps/{step_name:path}/result",
    response_class=Response,
    responses={
        200: {"description": "the step's whole parsed response", "content": JSON_CONTENT},
        404: {"description": "no such run or step, or the step has not completed"},
        410: {"description": "the value has expired (OUTPUT_TTL_SECONDS)"},
    },
)
async def get_step_result(workflow_id: str, step_name: str, values: RunValuesDep) -> Response:
    """A finished step's whole parsed response, however large."""
    return await values.step_result(workflow_id, step_name)


@router.get(
    "/runs/{workflow_id:path}/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "the run's events as Server-Sent Events, until it ends",
            "content": {"text/event-stream": {}},
        },
        404: {"description": "no such run"},
    },
)
async def get_run_events(
    workflow_id: str,
    runs: RunStatusDep,
    streams: StreamSlotsDep,
    polls: SharedPollsDep,
    redis: RedisDep,
    after: int | None = Query(
        None, ge=0, description="send the events after this sequence (as Last-Event-ID)"
    ),
    last_event_id: str | None = Header(
        None, description="the last event id received; wins over `after` (a reconnect)"
    ),
) -> EventSourceResponse:
    """A run's live progress (DAG or instructions): every event in the webhook model, in
    order, each under its sequence as the SSE id; streamed LLM answers' `step.delta` chunks
    between them (`gateway.live`); `end` last, once the run has ended."""
    cursor = EventCursor(after or 0)
    if last_event_id is not None:
        resumed = EventCursor.parse(last_event_id)
        if resumed is None:
            raise InvalidRequest(
                f"Last-Event-ID must be an event id this stream sent, not {last_event_id!r}"
            )
        cursor = resumed
    description = await runs.describe(workflow_id, "workflow_id")
    if description.workflow_type not in (DAG_RUNS.workflow_type, INSTRUCTION_RUNS.workflow_type):
        raise RunNotFound(f"{workflow_id!r} is not a pipeline or instruction run")
    slot = await streams.open(runs.tenant)
    live = LiveEvents(redis, runs.tenant.workflow_id(workflow_id))
    stream = RunEventStream(runs, workflow_id, cursor.sequence, polls, live, cursor.live)
    events = streams.held(runs.tenant, slot, stream.events(description))
    return EventSourceResponse(events, ping=PING_SECONDS)


@router.get("/runs", response_model=list[RunSummary])
async def list_runs(
    runs: RunStatusDep,
    state: str | None = Query(
        None,
        alias="status",
        description="only runs in this state: " + ", ".join(LISTED_STATES),
    ),
    limit: int = Query(50, ge=1, le=MAX_LISTED),
) -> list[RunSummary]:
    """The caller's runs, newest first (from Temporal's visibility store, which may lag a
    run's state by a moment)."""
    if state is not None and state not in LISTED_STATES:
        raise InvalidRequest(f"status must be one of {', '.join(LISTED_STATES)}, not {state!r}")
    return await runs.list(state, limit)


@router.get("/runs/{workflow_id:path}", response_model=DagRunResult | InstructionRunView)
async def get_run(workflow_id: str, runs: RunStatusDep) -> DagRunResult | InstructionRunView:
    """Any run's state (DAG or instructions): live per-step status while it runs, the result
    once it has ended."""
    return await runs.status(workflow_id)


@router.post(
    "/runs/{workflow_id:path}/cancel",
    response_model=DagRunResult | InstructionRunView,
    responses={404: {"description": "no such run"}, 409: {"description": "the run has ended"}},
)
async def cancel_run(workflow_id: str, runs: RunStatusDep) -> DagRunResult | InstructionRunView:
    """Cancel a run of either engine: running steps are cancelled, finished results are kept,
    and the status (and a DAG run's webhooks) say cancelled. Answers the status at once; the
    run reaches `cancelled` (instructions: `terminated`) moments later."""
    description = await runs.describe(workflow_id, "workflow_id")
    if description.status != WorkflowExecutionStatus.RUNNING:
        state = description.status.name.lower() if description.status else "unknown"
        raise RunConflict(f"run {workflow_id!r} has already ended ({state})")
    await runs.handle(workflow_id).cancel()
    return await runs.status(workflow_id)
