"""Reading a run back from Temporal, whatever state it is in and whichever engine ran it.

`RunStatusService` reads every run the same way:

1. the status the run's worker published to Redis, if any (`gateway.runs.published`): a fresh
   one answers alone;
2. describe the execution (404 when there is none);
3. finished: its result, or the status the workflow left in its failure's details;
4. not yet picked up by a worker (a query would wait for one): every step pending, read
   from the input the run was started with;
5. otherwise the published status or the workflow's status query, with the state Temporal
   closed it in, if any;
6. a DAG run with webhooks: each event's state from the run's outbox
   (`gateway.runs.outbox`).

What differs between the engines is asked of the run's `RunEngine` (`gateway.runs.engine`).
The query answers for a run whose status is not published (payload encryption on, Redis
unreachable, a run that continued as new and has not moved since). Concurrent reads of one
run share one read (`gateway.runs.reads`).
"""

from __future__ import annotations

import json
from contextlib import suppress
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.exceptions import ApplicationError, CancelledError, TerminatedError
from temporalio.service import RPCError, RPCStatusCode

from gateway.errors import RunConflict, RunNotFound, WorkerUnavailable
from gateway.runs import published as publishing
from gateway.runs.dag import DAG_RUNS
from gateway.runs.engine import (
    FINISHED,
    FIRST_TASK_DONE_EVENTS,
    STATUS_QUERY_TIMEOUT,
    AnswerT,
    InputT,
    RunEngine,
    StateT,
)
from gateway.runs.failures import decode_pending_failures
from gateway.runs.instructions import INSTRUCTION_RUNS, InstructionRunView
from gateway.runs.listing import RunSummary, list_runs
from gateway.runs.outbox import OutboxReads
from gateway.runs.published import Published
from gateway.runs.reads import RunAnswer, StatusReads
from gateway.tenancy import Tenant
from kernel.errors import PayloadUndecodable
from workflows.dag.models import DagRunResult


def failure_details(error: WorkflowFailureError) -> tuple[str, str, Any]:
    """(type, message, first detail) of the ApplicationError that failed a workflow."""
    cause = error.cause
    if isinstance(cause, ApplicationError):
        detail = cause.details[0] if cause.details else None
        return cause.type or "ApplicationError", cause.message, detail
    return type(cause).__name__, str(cause), None


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
        self.outboxes = OutboxReads(client)

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
        raise RunNotFound(
            f"{workflow_id!r} is a {workflow_type}, not a pipeline or instruction run; see it in"
            " the Temporal Web UI",
        )

    async def published(self, workflow_id: str) -> Published | None:
        """What the run's worker last published (`gateway.runs.published`); None without
        Redis, when nothing is published, or when Redis cannot say."""
        if self.redis is None:
            return None
        return await publishing.read_published(self.redis, self.tenant.workflow_id(workflow_id))

    async def publish_queued(
        self, engine: RunEngine[AnswerT, InputT, StateT], workflow_id: str, run_id: str, run: InputT
    ) -> None:
        """Publish a run just started as its worker would before picking it up (every step
        pending), fresh for `fresh_for`, unless its worker has published it already.

        Reads of a run no worker has picked up yet then answer from Redis too, where they would
        otherwise describe the run and read its input back from its history (two calls to a
        busy server). The script writes only over another run's status (or none): the worker's
        is always newer.
        """
        if self.redis is None or self.fresh_for <= timedelta(0):
            return
        await publishing.publish_queued(
            self.redis,
            self.tenant.workflow_id(workflow_id),
            run_id,
            engine.queued(workflow_id, run_id, run).model_dump_json(),
            engine.workflow_type,
            self.fresh_for,
        )

    async def instruction_status(self, instance_id: str) -> InstructionRunView:
        """An instruction run, and only one (`GET /?instanceId=`)."""
        published = await self.published(instance_id)
        workflow_type, description = await self.identify(instance_id, "instanceId", published)
        if workflow_type != INSTRUCTION_RUNS.workflow_type:
            raise RunNotFound(f"{instance_id!r} is a {workflow_type} run, not an instruction run")
        return await self.read(INSTRUCTION_RUNS, instance_id, description, published)

    async def identify(
        self, workflow_id: str, what: str, published: Published | None
    ) -> tuple[str, WorkflowExecutionDescription | None]:
        """The run's workflow type, and its description unless its fresh published status
        answers for it alone (None: the trade-off `STATUS_FRESH_SECONDS` names);
        `RunNotFound` naming `what` when there is no such run."""
        if published is not None and published.fresh:
            return published.snapshot.workflow_type, None
        description = await self.describe(workflow_id, what)
        return description.workflow_type, description

    async def with_webhooks(self, run: DagRunResult) -> DagRunResult:
        """`run` with its webhook events' state as its outbox knows it
        (`OutboxReads.with_webhooks`)."""
        return await self.outboxes.with_webhooks(run)

    async def describe(self, workflow_id: str, what: str) -> WorkflowExecutionDescription:
        """The run's Temporal description; `RunNotFound` naming `what` when there is none."""
        try:
            return await self.handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise RunNotFound(f"no run with {what} {workflow_id!r}") from exc
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
                raise WorkerUnavailable(
                    f"run {workflow_id!r} did not answer its status query ({exc}); is a worker"
                    f" polling task queue {description.task_queue!r}?",
                ) from exc
            # Closed before it could answer, or no worker answered in time.
            answer = await self.pending(engine, handle, description)
        closed = engine.closed_status.get(state) if state is not None else None
        if closed is None:
            await decode_pending_failures(self.client.data_converter, description)
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
        except (ValidationError, PayloadUndecodable) as exc:
            # `POST /execute` attached to a running workflow of another kind with this id.
            raise RunConflict(
                f"workflow_id {client_id!r} belongs to a run that is not {engine.kind}"
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
        return await list_runs(self.client, self.tenant, state, limit)

    def handle(self, workflow_id: str) -> WorkflowHandle[Any, Any]:
        """The Temporal handle of the tenant's run `workflow_id` (its latest run)."""
        return self.client.get_workflow_handle(self.tenant.workflow_id(workflow_id))
