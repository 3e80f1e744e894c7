"""Reading a run back from Temporal, whatever state it is in and whichever engine ran it.

`RunStatusService` reads every run the same way:

1. describe the execution (404 when there is none);
2. finished: its result, or the status the workflow left in its failure's details;
3. not yet picked up by a worker (a query would wait for one): every step pending, read
   from the input the run was started with;
4. otherwise the workflow's status query, with the state Temporal closed it in, if any;
5. a DAG run with webhooks: each event's state from the run's outbox (`WebhookOutboxWorkflow`),
   which delivers after the run has ended (live from its query while it delivers, with the
   attempt and last failure of the event being retried; from its result once it has closed).

A `RunEngine` holds what differs between the engines: `DAG_RUNS` and `INSTRUCTION_RUNS`.

A running run's status comes, when its worker published it (`activities.store.status`),
from Redis, read (one round trip) before the run is described: the query waits for the
worker that holds the run, which under load is busy running the runs (bench: p50 52 ms, p99
320 ms with 100 durable runs in flight, against 17 / 74 ms for the describe). The query
answers for a run whose status is not published (payload encryption on, Redis unreachable, a
run that continued as new and has not moved since). A status published with its freshness
mark still there (the run moved less than STATUS_FRESH_SECONDS ago) answers alone, with no
describe at all: for that long a read may miss a termination from outside the run and a
durable step's current retry attempt (`Published`). Concurrent reads of one run share one
read (`StatusReads`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from fastapi import HTTPException
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError, CancelledError, TerminatedError
from temporalio.service import RPCError, RPCStatusCode

from activities.store.models import RunSnapshot, fresh_key, status_key
from gateway.tenancy import Tenant
from kernel.redact import redact_urls
from workflows.dag.models import (
    DagRunInput,
    DagRunResult,
    Progress,
    RunError,
    RunState,
    StepState,
)
from workflows.dag.workflow import DagWorkflow, step_activity_id
from workflows.instructions.models import InstructionRunInput, InstructionRunStatus
from workflows.instructions.models import RunError as InstructionRunError
from workflows.instructions.models import RunState as InstructionRunState
from workflows.instructions.workflow import InstructionWorkflow
from workflows.shared.outbox import WebhookOutboxWorkflow
from workflows.shared.webhooks import OutboxInput, WebhookDeliveries

logger = logging.getLogger(__name__)

#: The search attributes the gateway sets on every run (`settings.SEARCH_ATTRIBUTES`).
ENGINE = SearchAttributeKey.for_keyword("WorkflowStationEngine")
NAMESPACE = SearchAttributeKey.for_keyword("WorkflowStationNamespace")
SEED_ID = SearchAttributeKey.for_keyword("WorkflowStationId")
TENANT = SearchAttributeKey.for_keyword("WorkflowStationTenant")

#: A query is answered by a worker in milliseconds; waiting longer only hides a missing worker.
STATUS_QUERY_TIMEOUT = timedelta(seconds=10)
#: Started, task scheduled, task started, task completed: from then on the run can be queried.
FIRST_TASK_DONE_EVENTS = 4
FINISHED = (WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.FAILED)

AnswerT = TypeVar("AnswerT", bound=BaseModel)
InputT = TypeVar("InputT", bound=BaseModel)
StateT = TypeVar("StateT", bound=str)


class InstructionRunView(InstructionRunStatus):
    """An instruction run as `GET /?instanceId=` and `GET /runs/{id}` answer it."""

    instance_id: str


class StatusWorkflow(Protocol):
    """A workflow the gateway can read: started by `run`, answering `get_status` meanwhile."""

    async def run(self, run: Any) -> Any: ...

    def get_status(self) -> Any: ...


class RunEngine(ABC, Generic[AnswerT, InputT, StateT]):
    """What reading one engine's runs needs to know; `RunStatusService` does the rest."""

    #: Its type name tells the engines' runs apart; `run` and `get_status` give the typed
    #: handle and the status query.
    workflow: type[StatusWorkflow]
    #: What its runs are called, for the 409 when a run of another kind holds the id.
    kind: str
    #: The input its runs start with, read back while no worker has picked a run up.
    input_model: type[InputT]
    #: The state of a run Temporal closed other than by completing or failing it.
    closed_status: Mapping[WorkflowExecutionStatus, StateT]
    #: Whether a running run whose query no worker answers is a 503 (else: read from its input).
    needs_worker: bool = False

    @property
    def workflow_type(self) -> str:
        return self.workflow.__name__

    @abstractmethod
    def answer(self, workflow_id: str, status: Any) -> AnswerT:
        """A result, query answer or failure detail as the gateway answers it."""

    @abstractmethod
    def queued(self, workflow_id: str, run_id: str, run: InputT | None) -> BaseModel:
        """The status a run no worker has picked up would report: every step of its input
        pending (as its `get_status` query answers, so `answer` takes it)."""

    def pending(self, workflow_id: str, run_id: str, run: InputT | None) -> AnswerT:
        """A run no worker has picked up, as the gateway answers it."""
        return self.answer(workflow_id, self.queued(workflow_id, run_id, run))

    @abstractmethod
    def failed(
        self, workflow_id: str, run_id: str | None, error_type: str, message: str, cancelled: bool
    ) -> AnswerT:
        """A run whose failure carries no status: the error alone."""

    @abstractmethod
    def close(self, answer: AnswerT, state: StateT) -> None:
        """Put the state Temporal closed the run in over the status it last reported."""

    def add_live_state(self, answer: AnswerT, description: WorkflowExecutionDescription) -> None:
        """Add what only Temporal knows while the run goes on; nothing unless overridden."""


class DagRuns(RunEngine[DagRunResult, DagRunInput, RunState]):
    """DAG pipelines: a step being retried shows its attempt and last failure."""

    workflow = DagWorkflow
    kind = "a DAG pipeline"
    input_model = DagRunInput
    closed_status: Mapping[WorkflowExecutionStatus, RunState] = {
        WorkflowExecutionStatus.CANCELED: "cancelled",
        WorkflowExecutionStatus.TERMINATED: "cancelled",
        WorkflowExecutionStatus.TIMED_OUT: "failed",
    }

    def answer(self, workflow_id: str, status: Any) -> DagRunResult:
        return DagRunResult.model_validate(status)

    def queued(self, workflow_id: str, run_id: str, run: DagRunInput | None) -> DagRunResult:
        if run is not None and run.resume is not None:
            # A run that continued as new, not picked up yet: where the chain had got to.
            return run.resume.result.model_copy(update={"run_id": run_id})
        steps = {
            step.step_name: StepState(step_name=step.step_name, usid=step.usid)
            for step in (run.STEPS_CONFIG if run is not None else [])
        }
        return DagRunResult(
            workflow_id=workflow_id,
            run_id=run_id,
            namespace=run.namespace if run is not None else "default",
            steps=steps,
            progress=Progress(total=len(steps)),
        )

    def failed(
        self, workflow_id: str, run_id: str | None, error_type: str, message: str, cancelled: bool
    ) -> DagRunResult:
        return DagRunResult(
            workflow_id=workflow_id,
            run_id=run_id,
            # As `GET /runs` reports a cancelled or terminated run.
            status="cancelled" if cancelled else "failed",
            error=RunError(type=error_type, message=message),
        )

    def close(self, answer: DagRunResult, state: RunState) -> None:
        answer.status = state

    def add_live_state(
        self, answer: DagRunResult, description: WorkflowExecutionDescription
    ) -> None:
        """Show a running step's current attempt and last failure while Temporal retries it."""
        for pending in description.raw_description.pending_activities:
            for name, step in answer.steps.items():
                if step.status == "running" and pending.activity_id == step_activity_id(name):
                    step.attempts = pending.attempt
                    if pending.HasField("last_failure"):
                        # Redacted at the source too; this holds for any failure.
                        step.last_failure = redact_urls(pending.last_failure.message)
                    if pending.HasField("next_attempt_schedule_time"):
                        step.next_attempt_at = pending.next_attempt_schedule_time.ToDatetime(
                            tzinfo=UTC
                        )


class InstructionRuns(RunEngine[InstructionRunView, InstructionRunInput, InstructionRunState]):
    """Instruction runs: a running run no worker answers for is a 503 naming its task queue."""

    workflow = InstructionWorkflow
    kind = "an instruction run"
    input_model = InstructionRunInput
    closed_status: Mapping[WorkflowExecutionStatus, InstructionRunState] = {
        WorkflowExecutionStatus.CANCELED: "terminated",
        WorkflowExecutionStatus.TERMINATED: "terminated",
        WorkflowExecutionStatus.TIMED_OUT: "errored",
    }
    needs_worker = True

    def answer(self, workflow_id: str, status: Any) -> InstructionRunView:
        status = InstructionRunStatus.model_validate(status)
        return InstructionRunView(instance_id=workflow_id, **dict(status))

    def queued(
        self, workflow_id: str, run_id: str, run: InstructionRunInput | None
    ) -> InstructionRunStatus:
        if run is not None and run.resume is not None:
            return run.resume.status  # continued as new, not picked up yet
        if run is not None:
            return InstructionRunStatus.for_input(run)
        return InstructionRunStatus()

    def failed(
        self, workflow_id: str, run_id: str | None, error_type: str, message: str, cancelled: bool
    ) -> InstructionRunView:
        error = InstructionRunError(type=error_type, message=message)
        return self.answer(workflow_id, InstructionRunStatus(status="errored", error=error))

    def close(self, answer: InstructionRunView, state: InstructionRunState) -> None:
        answer.status = state
        if state == "errored" and answer.error is None:
            answer.error = InstructionRunError(
                type="TimedOut", message="the run exceeded its execution timeout"
            )


DAG_RUNS = DagRuns()
INSTRUCTION_RUNS = InstructionRuns()


def add_live_attempt(summary: WebhookDeliveries, description: WorkflowExecutionDescription) -> None:
    """Show the event being retried with its current attempt, last failure and next attempt,
    which only Temporal knows until its delivery ends (activity id `<event_id>#<n>`)."""
    for pending in description.raw_description.pending_activities:
        event_id = pending.activity_id.rpartition("#")[0]
        event = next((e for e in summary.events if e.event_id == event_id), None)
        if event is None:
            continue
        event.attempts += pending.attempt
        if pending.HasField("last_failure"):
            event.last_error = pending.last_failure.message
            summary.last_error = event.last_error
        if pending.HasField("next_attempt_schedule_time"):
            event.next_attempt_at = pending.next_attempt_schedule_time.ToDatetime(tzinfo=UTC)


def failure_details(error: WorkflowFailureError) -> tuple[str, str, Any]:
    """(type, message, first detail) of the ApplicationError that failed a workflow."""
    cause = error.cause
    if isinstance(cause, ApplicationError):
        detail = cause.details[0] if cause.details else None
        return cause.type or "ApplicationError", cause.message, detail
    return type(cause).__name__, str(cause), None


#: `GET /runs?status=`: the run states a list can be narrowed to, as Temporal's visibility
#: store names them.
LISTED_STATES: Mapping[str, str] = {
    "running": "Running",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Canceled",
    "terminated": "Terminated",
    "timed_out": "TimedOut",
}
#: Runs one list answers at most.
MAX_LISTED = 1000


class RunSummary(BaseModel):
    """One run as `GET /runs` lists it; `GET /runs/{workflow_id}` has the rest."""

    workflow_id: str
    run_id: str
    engine: str
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None


def listed_state(status: WorkflowExecutionStatus | None) -> str:
    """A run state in the list's words (`LISTED_STATES`)."""
    if status is None:
        return "unknown"
    if status == WorkflowExecutionStatus.CANCELED:
        return "cancelled"
    return status.name.lower()


RunAnswer = DagRunResult | InstructionRunView
#: Publish a just-started run's queued status (`RunStatusService.publish_queued`) unless the
#: status key already holds this run's: KEYS status, fresh mark; ARGV run id, status JSON,
#: workflow type, freshness ms. Both expire with the window: a queued status is never read
#: after it, even if no worker ever publishes the run (an older worker, one without Redis).
#: One script, so a worker's write never interleaves.
PUBLISH_QUEUED = """
if redis.call('HGET', KEYS[1], 'run_id') == ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'run_id', ARGV[1], 'status', ARGV[2], 'workflow_type', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4])
return 1
"""
#: The workflow types whose runs' status the worker publishes.
ENGINE_TYPES = frozenset({DAG_RUNS.workflow_type, INSTRUCTION_RUNS.workflow_type})


@dataclass(frozen=True)
class Published:
    """A run's status as its worker last published it (`activities.store.status`)."""

    snapshot: RunSnapshot
    #: Its freshness mark names its run, and it is a run of a known engine: the worker
    #: published it running less than STATUS_FRESH_SECONDS ago (by Redis's clock), so it
    #: answers alone, without a describe.
    fresh: bool


class StatusReads:
    """Reads of runs' status under way in the gateway process: readers of a run that is
    being read wait for that read and get its answer, which is no older than one of their own
    would be. A dashboard's many viewers then cost one read, not one each. Keyed by the
    Temporal workflow id, which names the tenant (`Tenant.workflow_id`): tenants never share
    a read.
    """

    def __init__(self) -> None:
        self._reading: dict[str, asyncio.Future[RunAnswer]] = {}

    async def shared(self, key: str, read: Callable[[], Awaitable[RunAnswer]]) -> RunAnswer:
        """`read()`'s answer, or that of the read of `key` already under way."""
        while (reading := self._reading.get(key)) is not None:
            try:
                return await asyncio.shield(reading)
            except asyncio.CancelledError:
                if not reading.cancelled():
                    raise  # this reader was cancelled
                # The reader it waited for was (its client went away): read anew.
        future: asyncio.Future[RunAnswer] = asyncio.get_running_loop().create_future()
        self._reading[key] = future
        try:
            answer = await read()
        except Exception as exc:
            future.set_exception(exc)
            # Retrieved here, so a read no one else waited for logs no "never retrieved".
            future.exception()
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(answer)
            return answer
        finally:
            del self._reading[key]


class RunStatusService:
    """A tenant's runs, read through the gateway's Temporal client, and the status their
    worker publishes to `redis` (`activities.store.status`) when given.

    Methods take the id the tenant knows a run by; another tenant's run is never found.
    """

    def __init__(
        self,
        client: Client,
        tenant: Tenant,
        reads: StatusReads | None = None,
        redis: Redis | None = None,
        fresh_for: timedelta = timedelta(0),
    ) -> None:
        self.client = client
        self.tenant = tenant
        self.reads = reads or StatusReads()
        self.redis = redis
        #: `STATUS_FRESH_SECONDS`: how long a just-started run's queued status answers alone
        #: (`publish_queued`); zero publishes none.
        self.fresh_for = fresh_for

    async def status(self, workflow_id: str) -> RunAnswer:
        """A run of either engine (`GET /runs/{workflow_id}`)."""
        key = self.tenant.workflow_id(workflow_id)
        return await self.reads.shared(key, lambda: self._status(workflow_id))

    async def _status(self, workflow_id: str) -> RunAnswer:
        published = await self.published(workflow_id)
        workflow_type, description = await self.identify(workflow_id, "workflow_id", published)
        if workflow_type == INSTRUCTION_RUNS.workflow_type:
            return await self.read(INSTRUCTION_RUNS, workflow_id, description, published)
        if workflow_type == DAG_RUNS.workflow_type:
            run = await self.read(DAG_RUNS, workflow_id, description, published)
            return await self.with_webhooks(run)
        raise HTTPException(
            404,
            f"{workflow_id!r} is a {workflow_type}, not a pipeline or instruction run; see it in"
            " the Temporal Web UI",
        )

    async def published(self, workflow_id: str) -> Published | None:
        """What the run's worker last published and whether its freshness mark is there for
        it, in one Redis round trip; None without Redis, when nothing is published, or when
        Redis cannot say (the describe and the query answer then)."""
        if self.redis is None:
            return None
        temporal_id = self.tenant.workflow_id(workflow_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(status_key(temporal_id))
        pipe.get(fresh_key(temporal_id))
        try:
            fields, mark = await pipe.execute()
        except RedisError:
            return None
        if not fields:
            return None
        snapshot = RunSnapshot(
            run_id=fields[b"run_id"],
            status=fields[b"status"],
            workflow_type=fields.get(b"workflow_type", b""),
        )
        fresh = mark == fields[b"run_id"] and snapshot.workflow_type in ENGINE_TYPES
        return Published(snapshot, fresh)

    async def publish_queued(
        self, engine: RunEngine[AnswerT, InputT, StateT], workflow_id: str, run_id: str, run: InputT
    ) -> None:
        """Publish a run just started as its worker would before picking it up (every step
        pending), fresh for `fresh_for`, unless its worker has published it already.

        Reads of a run no worker has picked up yet then answer from Redis too, where they would
        otherwise describe the run and read its input back from its history (two calls to a
        busy server). The script writes only over another run's status (or none): the worker's
        is always newer. A Redis that fails it is logged; reads describe the run then.
        """
        if self.redis is None or self.fresh_for <= timedelta(0):
            return
        temporal_id = self.tenant.workflow_id(workflow_id)
        status = engine.queued(workflow_id, run_id, run).model_dump_json()
        try:
            await self.redis.eval(
                PUBLISH_QUEUED,
                2,
                status_key(temporal_id),
                fresh_key(temporal_id),
                run_id,
                status,
                engine.workflow_type,
                int(self.fresh_for / timedelta(milliseconds=1)),
            )
        except RedisError:
            logger.warning("queued status of %s not published", temporal_id, exc_info=True)

    async def instruction_status(self, instance_id: str) -> InstructionRunView:
        """An instruction run, and only one (`GET /?instanceId=`)."""
        published = await self.published(instance_id)
        workflow_type, description = await self.identify(instance_id, "instanceId", published)
        if workflow_type != INSTRUCTION_RUNS.workflow_type:
            raise HTTPException(
                404, f"{instance_id!r} is a {workflow_type} run, not an instruction run"
            )
        return await self.read(INSTRUCTION_RUNS, instance_id, description, published)

    async def identify(
        self, workflow_id: str, what: str, published: Published | None
    ) -> tuple[str, WorkflowExecutionDescription | None]:
        """The run's workflow type, and its description unless its fresh published status
        answers for it alone (None: the trade-off `STATUS_FRESH_SECONDS` names); 404 naming
        `what` when there is no such run."""
        if published is not None and published.fresh:
            return published.snapshot.workflow_type, None
        description = await self.describe(workflow_id, what)
        return description.workflow_type, description

    async def with_webhooks(self, run: DagRunResult) -> DagRunResult:
        """`run` with its webhook events' state as its outbox knows it (unchanged for a run
        without webhooks, or whose outbox cannot say yet)."""
        recorded = run.webhooks
        if recorded.outbox_id is None:
            return run
        outbox = await self.webhooks(recorded.outbox_id)
        if outbox is not None:
            merged = outbox.model_copy(update={"outbox_id": recorded.outbox_id})
            # What the run itself could not hand over to the outbox, if anything.
            merged.undelivered += recorded.undelivered
            merged.last_error = outbox.last_error or recorded.last_error
            run.webhooks = merged
        return run

    def outbox(self, outbox_id: str) -> WorkflowHandle[WebhookOutboxWorkflow, OutboxInput]:
        return self.client.get_workflow_handle_for(WebhookOutboxWorkflow.run, outbox_id)

    async def describe_outbox(self, outbox_id: str) -> WorkflowExecutionDescription | None:
        try:
            return await self.outbox(outbox_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    async def webhooks(self, outbox_id: str) -> WebhookDeliveries | None:
        """An outbox's counts and per-event state; None while it cannot say (not started or
        picked up yet, no worker answering, closed other than by finishing)."""
        description = await self.describe_outbox(outbox_id)
        if description is None:
            return None
        handle = self.outbox(outbox_id)
        if description.status == WorkflowExecutionStatus.COMPLETED:
            try:
                return (await handle.result()).state.summary()
            except WorkflowFailureError:
                return None
        if (
            description.status != WorkflowExecutionStatus.RUNNING
            or description.history_length < FIRST_TASK_DONE_EVENTS
        ):
            return None
        try:
            summary = await handle.query(
                WebhookOutboxWorkflow.get_status, rpc_timeout=STATUS_QUERY_TIMEOUT
            )
        except (RPCError, WorkflowQueryFailedError):
            return None
        add_live_attempt(summary, description)
        return summary

    async def describe(self, workflow_id: str, what: str) -> WorkflowExecutionDescription:
        """The run's Temporal description; 404 naming `what` when there is no such workflow."""
        try:
            return await self.handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise HTTPException(404, f"no run with {what} {workflow_id!r}") from exc
            raise

    async def read(
        self,
        engine: RunEngine[AnswerT, InputT, StateT],
        workflow_id: str,
        description: WorkflowExecutionDescription | None,
        published: Published | None = None,
    ) -> AnswerT:
        """A running run its fresh published status answers for alone (no `description`), or
        a described run: final from its result, else live from the status its worker published
        for this run (`published`), else from its query."""
        if description is None:
            assert published is not None and published.fresh
            return engine.answer(workflow_id, json.loads(published.snapshot.status))
        handle = self.handle(workflow_id)
        state = description.status
        if state in FINISHED:
            return await self.result(engine, handle)
        snapshot = published.snapshot if published is not None else None
        if snapshot is not None and snapshot.run_id != description.run_id:
            snapshot = None  # another run's of this id
        if snapshot is None and description.history_length < FIRST_TASK_DONE_EVENTS:
            # No worker has picked it up yet: a query would wait for one, so answer from the
            # input. (A fast run's first task may stay open for seconds while its local
            # activities run; what its worker published meanwhile is its state.)
            return await self.pending(engine, handle, description)
        try:
            if snapshot is not None:
                answer = engine.answer(workflow_id, json.loads(snapshot.status))
            else:
                status = await handle.query(
                    engine.workflow.get_status, rpc_timeout=STATUS_QUERY_TIMEOUT
                )
                answer = engine.answer(workflow_id, status)
        except (RPCError, WorkflowQueryFailedError) as exc:
            if engine.needs_worker and state == WorkflowExecutionStatus.RUNNING:
                raise HTTPException(
                    503,
                    f"run {workflow_id!r} did not answer its status query ({exc}); is a worker"
                    f" polling task queue {description.task_queue!r}?",
                ) from exc
            # Closed before it could answer, or no worker answered in time.
            answer = await self.pending(engine, handle, description)
        closed = engine.closed_status.get(state) if state is not None else None
        if closed is None:
            engine.add_live_state(answer, description)
        else:
            engine.close(answer, closed)
        return answer

    async def result(
        self, engine: RunEngine[AnswerT, InputT, StateT], handle: WorkflowHandle[Any, Any]
    ) -> AnswerT:
        """A finished run: its result, or the status its workflow left in the failure's details
        (the status when the failing step gave up)."""
        client_id = self.tenant.client_id(handle.id)
        try:
            return engine.answer(client_id, await handle.result())
        except ValidationError as exc:
            # `POST /execute` attached to a running workflow of another kind with this id.
            raise HTTPException(
                409, f"workflow_id {client_id!r} belongs to a run that is not {engine.kind}"
            ) from exc
        except WorkflowFailureError as exc:
            error_type, message, detail = failure_details(exc)
            if isinstance(detail, dict) and "steps" in detail:
                # Another engine's status (a run of another kind with this id) does not fit.
                with suppress(ValidationError):
                    return engine.answer(client_id, detail)
            cancelled = isinstance(exc.cause, CancelledError | TerminatedError)
            return engine.failed(client_id, handle.result_run_id, error_type, message, cancelled)

    async def pending(
        self,
        engine: RunEngine[AnswerT, InputT, StateT],
        handle: WorkflowHandle[Any, Any],
        description: WorkflowExecutionDescription,
    ) -> AnswerT:
        """A run whose workflow cannot answer yet, from the input it was started with."""
        run = None
        async for event in handle.fetch_history_events(page_size=1):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            if payloads:
                [started] = await self.client.data_converter.decode(payloads[:1])
                run = engine.input_model.model_validate(started)
            break
        return engine.pending(self.tenant.client_id(handle.id), description.run_id, run)

    async def list(self, state: str | None, limit: int) -> list[RunSummary]:
        """The tenant's DAG and instruction runs, newest first, in state `state` if given."""
        query = (
            f"WorkflowStationTenant = '{self.tenant.name}'"
            " AND WorkflowStationEngine IN ('dag', 'instructions')"
        )
        if state is not None:
            query += f" AND ExecutionStatus = '{LISTED_STATES[state]}'"
        runs: list[RunSummary] = []
        async for execution in self.client.list_workflows(query, limit=limit):
            engine = execution.typed_search_attributes.get(ENGINE) or "unknown"
            runs.append(
                RunSummary(
                    workflow_id=self.tenant.client_id(execution.id),
                    run_id=execution.run_id,
                    engine=engine,
                    status=listed_state(execution.status),
                    started_at=execution.start_time,
                    finished_at=execution.close_time,
                )
            )
        return runs

    def handle(self, workflow_id: str) -> WorkflowHandle[Any, Any]:
        """The Temporal handle of the tenant's run `workflow_id` (its latest run)."""
        return self.client.get_workflow_handle(self.tenant.workflow_id(workflow_id))
