"""A tenant's schedules: Temporal Schedules that start one DAG pipeline when it is due.

A schedule is created with the start options `POST /execute` uses (`gateway.starts`): the
engine options, run deadline, task timeout and search attributes are decided once, at
creation, and carried by every run it starts; its input goes through the client's data
converter, so it is stored encrypted when payload encryption is on.

Tenancy is the runs' (`gateway.tenancy`): the schedule's Temporal id is the tenant's
`<tenant>/<schedule_id>`, so another tenant's id is not found (404), and the list asks for
the tenant's schedules by search attribute and keeps only ids under its prefix. Temporal
names each run `<its schedule's Temporal id>-<time it was due>`, so a run is the tenant's
`<schedule_id>-<time>` to `GET /runs` and `GET /runs/{workflow_id}`, like any other run.

Scheduled starts take no run slot (`gateway.quotas` meters the gateway's starts; Temporal
starts these itself): a tenant's schedules are bounded instead, by TENANT_MAX_SCHEDULES, and
`skip` (the default overlap) keeps each to one running run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionResult,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleListDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from gateway.errors import InvalidRequest, LimitExceeded, ScheduleExists, ScheduleNotFound
from gateway.runs.listing import listed_state
from gateway.schedule_models import (
    BackfillRequest,
    Overlap,
    ScheduleCreate,
    ScheduledRun,
    ScheduleSummary,
    ScheduleView,
)
from gateway.starts import dag_execution_timeout, dag_task_timeout, search_attributes
from gateway.tenancy import Tenant
from kernel.search import NAMESPACE, SEED_ID, TENANT
from settings import Settings
from workflows.dag.models import DagRunInput
from workflows.dag.workflow import DagWorkflow

OVERLAP_POLICIES: dict[Overlap, ScheduleOverlapPolicy] = {
    "skip": ScheduleOverlapPolicy.SKIP,
    "buffer_one": ScheduleOverlapPolicy.BUFFER_ONE,
    "allow_all": ScheduleOverlapPolicy.ALLOW_ALL,
    "cancel_other": ScheduleOverlapPolicy.CANCEL_OTHER,
}
OVERLAPS: dict[ScheduleOverlapPolicy, Overlap] = {
    policy: name for name, policy in OVERLAP_POLICIES.items()
}
#: The schedule's memo key for its cron expression: Temporal answers a cron schedule's spec
#: as the calendars it compiled the expression into, not as the expression given.
CRON_MEMO = "cron"
#: Schedules one list answers at most.
MAX_LISTED = 1000


def scheduled_run(tenant: Tenant, result: ScheduleActionResult) -> ScheduledRun | None:
    """A run from a schedule's recent actions, by the id its tenant knows it by."""
    action = result.action
    if not isinstance(action, ScheduleActionExecutionStartWorkflow):
        return None
    return ScheduledRun(
        workflow_id=tenant.client_id(action.workflow_id),
        run_id=action.first_execution_run_id,
        scheduled_at=result.scheduled_at,
        started_at=result.started_at,
    )


def interval_of(spec: ScheduleSpec) -> int | None:
    return int(spec.intervals[0].every.total_seconds()) if spec.intervals else None


async def cron_of(schedule: ScheduleDescription | ScheduleListDescription) -> list[str]:
    cron = await schedule.memo_value(CRON_MEMO, None)
    return [cron] if isinstance(cron, str) else []


@contextmanager
def found(schedule_id: str) -> Iterator[None]:
    """Temporal's answer that no schedule has the id, as the tenant's 404."""
    try:
        yield
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ScheduleNotFound(f"no schedule {schedule_id!r}") from exc
        raise


class CronRefused(ValueError):
    """Temporal cannot read the cron expression (it parses them, so only it can tell)."""


class ScheduleService:
    """`tenant`'s schedules, through the gateway's Temporal client. Methods take the id the
    tenant knows a schedule by; another tenant's schedule is never found."""

    def __init__(self, client: Client, tenant: Tenant, settings: Settings) -> None:
        self.client = client
        self.tenant = tenant
        self.settings = settings

    def handle(self, schedule_id: str) -> ScheduleHandle:
        return self.client.get_schedule_handle(self.tenant.workflow_id(schedule_id))

    async def create(self, request: ScheduleCreate, run: DagRunInput) -> ScheduleView:
        """Create the schedule of `run`, a pipeline validated as `POST /execute` validates.

        Raises:
            LimitExceeded: the tenant has TENANT_MAX_SCHEDULES schedules already.
            ScheduleExists: it has one by this id.
            CronRefused: Temporal cannot read the cron expression.
        """
        await self._within_limit(request.schedule_id)
        temporal_id = self.tenant.workflow_id(request.schedule_id)
        action = ScheduleActionStartWorkflow(
            DagWorkflow.run,
            run,
            # Temporal appends the time each run was due: `<temporal_id>-2026-12-07T06:00:00Z`.
            id=temporal_id,
            task_queue=self.settings.task_queue,
            task_timeout=dag_task_timeout(run),
            execution_timeout=dag_execution_timeout(run, self.settings),
            typed_search_attributes=search_attributes(
                "dag", run.namespace, request.schedule_id, self.tenant
            ),
            static_summary=(
                f"DAG {run.namespace}/{request.schedule_id}: scheduled,"
                f" {len(run.STEPS_CONFIG)} steps"
            ),
        )
        if request.cron is not None:
            spec = ScheduleSpec(cron_expressions=[request.cron])
        else:
            every = timedelta(seconds=request.interval_seconds or 0)
            spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)])
        schedule = Schedule(
            action=action,
            spec=spec,
            policy=SchedulePolicy(overlap=OVERLAP_POLICIES[request.overlap]),
            state=ScheduleState(paused=request.paused, note=request.note),
        )
        try:
            await self.client.create_schedule(
                temporal_id,
                schedule,
                memo={CRON_MEMO: request.cron} if request.cron is not None else None,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(TENANT, self.tenant.name),
                        SearchAttributePair(NAMESPACE, run.namespace),
                        SearchAttributePair(SEED_ID, request.schedule_id),
                    ]
                ),
            )
        except ScheduleAlreadyRunningError as exc:
            raise ScheduleExists(
                f"schedule {request.schedule_id!r} exists; delete it first or name another"
            ) from exc
        except RPCError as exc:
            if exc.status != RPCStatusCode.INVALID_ARGUMENT or request.cron is None:
                raise
            raise CronRefused(exc.message) from exc
        return await self.describe(request.schedule_id)

    async def _within_limit(self, schedule_id: str) -> None:
        limit = self.settings.tenant_max_schedules
        if limit <= 0:
            return
        listed = await self.list(limit)
        if len(listed) >= limit and all(item.schedule_id != schedule_id for item in listed):
            raise LimitExceeded(
                f"tenant {self.tenant.name!r} has {limit} schedules, the most it may have"
                " (TENANT_MAX_SCHEDULES); delete one first"
            )

    async def list(self, limit: int = MAX_LISTED) -> list[ScheduleSummary]:
        """The tenant's schedules (from Temporal's visibility store, a moment behind)."""
        prefix = self.tenant.workflow_id("")
        listed: list[ScheduleSummary] = []
        schedules = await self.client.list_schedules(f"{TENANT.name} = '{self.tenant.name}'")
        async for entry in schedules:
            if not entry.id.startswith(prefix) or entry.schedule is None or entry.info is None:
                continue
            spec, state = entry.schedule.spec, entry.schedule.state
            listed.append(
                ScheduleSummary(
                    schedule_id=self.tenant.client_id(entry.id),
                    cron=await cron_of(entry),
                    interval_seconds=interval_of(spec),
                    paused=state.paused,
                    note=state.note or None,
                    next_action_times=list(entry.info.next_action_times),
                )
            )
            if len(listed) >= limit:
                break
        return listed

    async def describe(self, schedule_id: str) -> ScheduleView:
        """A schedule's timing, policy, next times and recent runs with their status.

        Raises:
            ScheduleNotFound: the tenant has no schedule by this id.
        """
        with found(schedule_id):
            description = await self.handle(schedule_id).describe()
        schedule, info = description.schedule, description.info
        runs = [
            run
            for result in reversed(info.recent_actions)
            if (run := scheduled_run(self.tenant, result)) is not None
        ]
        await asyncio.gather(*(self._read_status(run) for run in runs))
        return ScheduleView(
            schedule_id=schedule_id,
            cron=await cron_of(description),
            interval_seconds=interval_of(schedule.spec),
            paused=schedule.state.paused,
            note=schedule.state.note or None,
            next_action_times=list(info.next_action_times),
            overlap=OVERLAPS.get(schedule.policy.overlap, "skip"),
            created_at=info.created_at,
            runs_started=info.num_actions,
            skipped_for_overlap=info.num_actions_skipped_overlap,
            running=[
                self.tenant.client_id(action.workflow_id)
                for action in info.running_actions
                if isinstance(action, ScheduleActionExecutionStartWorkflow)
            ],
            recent_runs=runs,
        )

    async def _read_status(self, run: ScheduledRun) -> None:
        """The run's state as `GET /runs` words it; unknown when Temporal cannot say (a run
        whose history has been deleted after its retention)."""
        handle = self.client.get_workflow_handle(
            self.tenant.workflow_id(run.workflow_id), run_id=run.run_id
        )
        try:
            run.status = listed_state((await handle.describe()).status)
        except RPCError:
            run.status = "unknown"

    async def pause(self, schedule_id: str, paused: bool, note: str | None) -> ScheduleView:
        """Pause (no run starts until unpaused; running runs go on) or unpause."""
        handle = self.handle(schedule_id)
        with found(schedule_id):
            if paused:
                await handle.pause(note=note or "paused through the gateway")
            else:
                await handle.unpause(note=note or "unpaused through the gateway")
        return await self.describe(schedule_id)

    async def trigger(self, schedule_id: str) -> ScheduleView:
        """Start a run now, as if it were due (under the schedule's overlap policy)."""
        with found(schedule_id):
            await self.handle(schedule_id).trigger()
        return await self.describe(schedule_id)

    async def backfill(self, schedule_id: str, request: BackfillRequest) -> ScheduleView:
        """Start the runs that were due between `start` and `end`, as if they were due now."""
        start, end = (
            moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            for moment in (request.start, request.end)
        )
        if end > datetime.now(UTC):
            raise InvalidRequest("end: a backfill covers the past; end is in the future")
        backfill = ScheduleBackfill(
            start_at=start, end_at=end, overlap=OVERLAP_POLICIES[request.overlap or "allow_all"]
        )
        with found(schedule_id):
            await self.handle(schedule_id).backfill(backfill)
        return await self.describe(schedule_id)

    async def delete(self, schedule_id: str) -> None:
        """Delete the schedule; the runs it started are not touched."""
        with found(schedule_id):
            await self.handle(schedule_id).delete()
