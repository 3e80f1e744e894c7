"""Runs' status published to Redis by the worker, so `GET /runs/{id}` needs no query.

A status query waits for the worker that holds the run, and under load that worker is busy
running the runs: with 100 durable runs in flight the query took p50 52 ms, p99 320 ms
(bench/dag.py). So the worker publishes each run's status itself, after every workflow task
that moved it, and the gateway reads it with one Redis GET beside the describe it makes
anyway (`gateway.runs`).

How: `PublishingRunner` wraps the worker's workflow runner. After an activation that
completed successfully and was not a replay, it answers the run's own `get_status` query
in the same thread, as the worker would answer one from a client (the same handler, the same
payload converter), and hands the answer to `RedisStatusPublisher`, whose thread writes it
(the task does not wait for Redis: a read in between sees the state before the task, as a
read a moment earlier would). A replay publishes nothing (it rebuilds the state already
published). The workflow's commands and history are untouched: nothing here runs in
workflow code.

What it costs: one query handler run (a pydantic dump of the run's status) per workflow
task, capped at `PUBLISH_SHARE` of the run's time, and one Redis round trip per batch of
changed runs on the writer's thread: a large run skips
publishing for a while after each publish and withdraws what it published meanwhile (the
gateway queries it then), so no read sees a state older than the query would. A write that
fails (within `WRITE_TIMEOUT_SECONDS`, never retried) removes what those runs had published,
if Redis lets it, and is logged: the gateway queries a run whose status is not in Redis, as
before. Only when neither the write nor the removal reaches Redis and the gateway's next read
does can a read show the state before that task, until the run's next task publishes.
With payload encryption on nothing is published: Redis would hold what Temporal holds
encrypted.

Freshness: with a running run's status the writer also sets its freshness mark
(`fresh_key`: the run id, expiring after `STATUS_FRESH_SECONDS`, by Redis's own clock, so no
two machines' clocks are compared); a finished run's status or a withdrawal deletes it. While
the mark names the published run, the gateway answers from the status alone, without the
describe that costs a loaded Temporal p50 18 / p99 92 ms. The trade-off: for up to
`STATUS_FRESH_SECONDS` after a run's last workflow task, a read may miss what happens to the
run with no workflow task to publish it, that is a termination from outside (a CLI or Web UI
terminate, the execution timeout), and a durable step's current retry attempt, last failure
and next attempt (Temporal's pending activity); past it the describe answers as before. A
cancel runs a workflow task, so it is published at once. `STATUS_FRESH_SECONDS=0` writes no
mark: every read describes.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import suppress
from datetime import timedelta
from typing import Any, Protocol

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.workflow import _Definition

from activities.store.models import RunSnapshot, fresh_key, status_key

logger = logging.getLogger(__name__)

#: The query every engine's workflow answers with its status.
STATUS_QUERY = "get_status"
#: A synthetic query's id; never sent to Temporal.
PUBLISH_QUERY_ID = "workflow-station-publish-status"
#: A running run's status is kept this long after its last change (a later change writes it
#: again; a run quiet for longer is queried).
RUNNING_TTL = timedelta(days=1)
#: A finished run is read from its result: its last status is kept only for reads already
#: under way.
FINISHED_TTL = timedelta(minutes=1)
#: The share of a run's time its worker may spend building its status to publish. Tens of
#: steps cost tens of microseconds, published after every task; a fan-out of 1,000 steps is
#: about 300 KB of JSON, published at most every (its cost / this share) seconds.
PUBLISH_SHARE = 0.05
#: A write waits this long at most, once, without retries: a Redis that does not answer
#: delays runs' status, never their tasks.
WRITE_TIMEOUT_SECONDS = 0.25


class StatusPublisher(Protocol):
    def publish(self, workflow_id: str, snapshot: RunSnapshot, finished: bool) -> None:
        """Make `snapshot` the run's published status (kept briefly once it has `finished`)."""

    def withdraw(self, workflow_id: str) -> None:
        """Remove the run's published status: it no longer is the run's state."""


class RedisStatusPublisher:
    """Writes snapshots to Redis on a thread of its own, so a workflow task never waits for
    Redis: in order, in one round trip for all the runs that changed meanwhile, and only the
    latest status of each."""

    def __init__(self, redis_url: str, *, fresh_for: timedelta) -> None:
        #: How long, in ms, a running run's status answers alone after it was published (its
        #: freshness mark's lifetime, `STATUS_FRESH_SECONDS`); zero writes no mark.
        self.fresh_ms = int(fresh_for / timedelta(milliseconds=1))
        self.redis = Redis.from_url(
            redis_url,
            socket_timeout=WRITE_TIMEOUT_SECONDS,
            socket_connect_timeout=WRITE_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        #: workflow id -> (snapshot, finished); None withdraws.
        self._pending: dict[str, tuple[RunSnapshot | None, bool]] = {}
        self._changed = threading.Condition()
        self._closing = False
        self._writer = threading.Thread(
            target=self._write_all, name="status-publisher", daemon=True
        )
        self._writer.start()

    def publish(self, workflow_id: str, snapshot: RunSnapshot, finished: bool) -> None:
        self._queue(workflow_id, snapshot, finished)

    def withdraw(self, workflow_id: str) -> None:
        self._queue(workflow_id, None, False)

    def _queue(self, workflow_id: str, snapshot: RunSnapshot | None, finished: bool) -> None:
        with self._changed:
            self._pending[workflow_id] = (snapshot, finished)
            self._changed.notify()

    def _write_all(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._pending) or self._closing)
                if not self._pending:
                    return
                batch, self._pending = self._pending, {}
            self._write(batch)

    def _write(self, batch: dict[str, tuple[RunSnapshot | None, bool]]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for workflow_id, (snapshot, finished) in batch.items():
            key = status_key(workflow_id)
            if snapshot is None:
                pipe.delete(*published_keys(workflow_id))
                continue
            pipe.hset(key, mapping=dict(snapshot))
            pipe.expire(key, FINISHED_TTL if finished else RUNNING_TTL)
            if finished or not self.fresh_ms:
                # Ended (or continued as new): the gateway describes it, to read its result.
                # No window: no run is ever read without a describe.
                pipe.delete(fresh_key(workflow_id))
            else:
                pipe.set(fresh_key(workflow_id), snapshot.run_id, px=self.fresh_ms)
        try:
            pipe.execute()
        except RedisError:
            logger.warning("status of %d runs not published", len(batch), exc_info=True)
            # What was published before is no longer these runs' state: gone, they are
            # queried until a later task publishes (if Redis lets us remove it).
            with suppress(RedisError):
                self.redis.delete(
                    *(key for workflow_id in batch for key in published_keys(workflow_id))
                )

    def close(self) -> None:
        """Write what is queued, then stop."""
        with self._changed:
            self._closing = True
            self._changed.notify()
        self._writer.join()
        self.redis.close()
        # As `activities.store.clients.close_redis`: no finalizer left to run in a sandbox.
        self.redis.connection_pool.reset()


class PublishingRunner(WorkflowRunner):
    """`inner`'s instances, each publishing its run's status after the tasks that move it
    (workflows of `workflow_types` only)."""

    def __init__(
        self,
        inner: WorkflowRunner,
        publisher: StatusPublisher,
        workflow_types: set[str],
        share: float = PUBLISH_SHARE,
    ) -> None:
        self.inner = inner
        self.publisher = publisher
        self.workflow_types = workflow_types
        self.share = share

    def prepare_workflow(self, defn: _Definition) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        instance = self.inner.create_instance(det)
        if det.defn.name not in self.workflow_types:
            return instance
        return _PublishingInstance(
            instance, det.info.workflow_id, det.defn.name, self.publisher, self.share
        )

    def set_worker_level_failure_exception_types(self, types: Any) -> None:
        self.inner.set_worker_level_failure_exception_types(types)


class _PublishingInstance(WorkflowInstance):
    """One run's instance. Its activations are never concurrent (the SDK runs one at a time
    per run), so its own state needs no lock."""

    def __init__(
        self,
        inner: WorkflowInstance,
        workflow_id: str,
        workflow_type: str,
        publisher: StatusPublisher,
        share: float,
    ) -> None:
        self.inner = inner
        self.workflow_id = workflow_id
        self.workflow_type = workflow_type
        self.publisher = publisher
        self.share = share
        #: Whether Redis holds this run's current state, as far as this instance knows.
        self.published = False
        #: `time.monotonic()` before which publishing again would pass `PUBLISH_SHARE`.
        self.next_publish = 0.0

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        completion = self.inner.activate(act)
        if not moved(act, completion):
            return completion
        ended = finished(completion)
        now = time.monotonic()
        try:
            if ended or now >= self.next_publish:
                self.published = False
                cost = self._publish(act, ended)
                self.published = True
                self.next_publish = now + cost / self.share
            elif self.published:
                self.published = False
                self.publisher.withdraw(self.workflow_id)
        except Exception:
            logger.warning("status of %s not published", self.workflow_id, exc_info=True)
            if not self.published:
                # Whatever is published is older than this task: the query answers instead.
                with suppress(Exception):
                    self.publisher.withdraw(self.workflow_id)
        return completion

    def _publish(self, act: WorkflowActivation, ended: bool) -> float:
        """Publish the run's status (its `get_status` answer, as a client's query would get
        it); the CPU seconds building it took."""
        started = time.thread_time()
        query = WorkflowActivation()
        query.CopyFrom(act)
        del query.jobs[:]
        job = query.jobs.add().query_workflow
        job.query_id = PUBLISH_QUERY_ID
        job.query_type = STATUS_QUERY
        answered = self.inner.activate(query)
        cost = time.thread_time() - started
        commands = answered.successful.commands if answered.HasField("successful") else []
        if not commands or not commands[0].respond_to_query.HasField("succeeded"):
            raise RuntimeError(f"its {STATUS_QUERY} query failed: {answered}")
        status = commands[0].respond_to_query.succeeded.response.data
        snapshot = RunSnapshot(run_id=act.run_id, status=status, workflow_type=self.workflow_type)
        self.publisher.publish(self.workflow_id, snapshot, ended)
        return cost

    def get_serialization_context(self, command_info: Any) -> Any:
        return self.inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self.inner.get_external_store_context(command_info)

    def get_info(self) -> Any:
        return self.inner.get_info()

    def get_thread_id(self) -> int | None:
        return self.inner.get_thread_id()


def published_keys(workflow_id: str) -> tuple[str, str]:
    """Every key the run's published status is held in."""
    return status_key(workflow_id), fresh_key(workflow_id)


def moved(act: WorkflowActivation, completion: WorkflowActivationCompletion) -> bool:
    """Whether an activation may have changed the run's state, as Temporal will record it:
    a successful task that is not a replay, a query or an eviction."""
    if act.is_replaying or not completion.HasField("successful"):
        return False
    return any(
        not job.HasField("query_workflow") and not job.HasField("remove_from_cache")
        for job in act.jobs
    )


def finished(completion: WorkflowActivationCompletion) -> bool:
    """Whether the task ends the run (or continues it as a new run, which publishes its own)."""
    return any(
        command.HasField("complete_workflow_execution")
        or command.HasField("fail_workflow_execution")
        or command.HasField("cancel_workflow_execution")
        or command.HasField("continue_as_new_workflow_execution")
        for command in completion.successful.commands
    )
