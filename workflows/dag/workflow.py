"""`DagWorkflow`: the seed's DAG runner as a thin Temporal scheduler over `dag_graph`.

Each step starts as soon as its upstream steps complete. A step's HTTP call is one activity
whose retry policy comes from PIPELINE_SETTINGS, regular or local by the run's execution mode
(`workflows.shared.execution`), and the call writes the step's outputs to Redis itself
(`OutputTarget`); selection reads, and output writes the call could not make, are local
activities. Local steps that become ready together run, with the local steps below them, in
one local activity (a segment, `workflows.dag.segment`). An `llm` step is one `CALL_LLM`
activity, always regular; an `instructions` step is a child `InstructionWorkflow`
(`workflows.dag.steps`); an `approval` step waits for the `approve` update
(`workflows.shared.approvals`), and the run's deadline does not count that wait
(`workflows.shared.deadline`). The `pause` and `resume` updates stop and restart the start of
new steps. Webhook events are handed, in order, to the run's
`WebhookOutboxWorkflow` by a background task; the outbox delivers them and outlives the run,
so a slow or dead receiver never holds up a step or the run's end.

Per-step work is O(1) amortised: progress counts change with each step's status, never by a
scan of every step.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from typing import Any, Literal, NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from activities.http.models import (
        DEFAULT_TENANT,
        SEND_WEBHOOK,
        HttpCall,
        HttpResult,
        WebhookDelivery,
        http_cache_key,
        idempotency_key,
    )
    from activities.llm.models import (
        CALL_LLM,
        MAX_RATE_LIMIT_WAIT,
        LlmCall,
        LlmText,
        fallback_chain,
        llm_cache_key,
    )
    from activities.pricing.models import PriceTable
    from activities.store.models import (
        READ_SELECTION,
        READ_VALUES,
        WRITE_OUTPUTS,
        OutputTarget,
        OutputWrite,
        SelectionRead,
        ValuesRead,
        parse_selection,
        redis_key,
    )
    from kernel import errors
    from kernel.errors import ErrorType
    from kernel.metrics import count_step
    from kernel.responses import main_value
    from kernel.search import ENGINE, SEED_ID
    from workflows.dag.budget import (
        NOTHING,
        RAISE_SCHEMA,
        Budget,
        Estimate,
        cheapest,
        child_engine,
        estimate,
        overrun,
        raise_refusal,
        raised,
    )
    from workflows.dag.caching import show_cached, step_caching
    from workflows.dag.graph import DagGraph, Scheduler, validate_pipeline
    from workflows.dag.map_items import MapWork
    from workflows.dag.map_run import carried_indices, run_map
    from workflows.dag.mapping import (
        MapCounts,
        MapOptions,
        failed_indices,
        resolve_items,
        tolerance_message,
    )
    from workflows.dag.models import (
        DEFAULT_BODY_METHODS,
        DagRerun,
        DagResume,
        DagRunInput,
        DagRunResult,
        Progress,
        RunError,
        StepConfig,
        StepError,
        StepState,
        Usage,
    )
    from workflows.dag.placement import call_runs_local, step_retries, step_timeout
    from workflows.dag.references import REF, is_reference, result_variable, step_view
    from workflows.dag.rerun import (
        is_unchanged,
        reuse_steps,
        stored_name,
        stored_references,
        take_unchanged,
    )
    from workflows.dag.segment import (
        CHECKPOINT_SECONDS,
        MAX_SEGMENT_STEPS,
        RUN_SEGMENT,
        Segment,
        SegmentReport,
        SegmentStep,
        StepReport,
        build_call,
        variables_read,
    )
    from workflows.dag.steps import (
        INSTRUCTION_WORKFLOW,
        answer_usage,
        approval_message,
        approval_of,
        approved_result,
        build_child_run,
        build_llm_call,
        child_usage,
        llm_result,
        show_answer,
        spent,
        step_label,
    )
    from workflows.shared.approval_wait import await_decision, waiting_data
    from workflows.shared.approvals import (
        Approval,
        ApprovalStep,
        approval_result,
        refusal,
        wait_seconds,
    )
    from workflows.shared.control import workflow_task_timeout
    from workflows.shared.deadline import HeldDeadline
    from workflows.shared.endpoints import resolve_endpoint
    from workflows.shared.events import EventLog, EventPage, EventsQuery
    from workflows.shared.execution import (
        Placement,
        execute_call,
        worst_case_seconds,
    )
    from workflows.shared.failures import (
        UNHEALABLE,
        StepFailed,
        StepFailure,
        heartbeat_timeout,
        run_deadline,
        step_failed,
        step_retry_policy,
    )
    from workflows.shared.outbox import forward_to_outbox
    from workflows.shared.runs import StepStatus
    from workflows.shared.usage_memo import record_usage
    from workflows.shared.webhooks import DeliveryPolicy, OutboxInput, outbox_workflow_id

StepOutcome = Literal["completed", "failed", "aborted", "cancelled"]
#: What a task of the run loop reports for each step it took; "released": a segment's step
#: it did not start, which the scheduler hands out again.
Settled = list[tuple[str, StepOutcome | Literal["released"]]]

#: One Redis read or write; a healthy Redis answers in milliseconds.
STORE_TIMEOUT = timedelta(seconds=10)
STORE_RETRY_INITIAL = timedelta(milliseconds=200)
#: Backoff between Redis attempts is capped, so a recovered Redis is used within seconds.
STORE_RETRY_MAX_INTERVAL = timedelta(seconds=5)


def store_retry_policy(window_seconds: float) -> RetryPolicy:
    """Redis reads and writes retry with capped backoff for `window_seconds`
    (`EngineOptions.store_retry_window_seconds`), so an outage shorter than that (a restart, a
    failover) only delays the step, and a longer one fails it.

    The window is counted in attempts, as many as its backoff intervals fill (an attempt that
    hangs adds up to STORE_TIMEOUT): temporalio 1.35 does not end a local activity's retries
    at its schedule-to-close timeout (measured: with a 2 s one, 100 attempts 0.3 s apart ran
    for 30 s).
    """
    initial = STORE_RETRY_INITIAL.total_seconds()
    cap = STORE_RETRY_MAX_INTERVAL.total_seconds()
    attempts, waited, interval = 1, 0.0, initial
    while waited < window_seconds and interval < cap:
        waited += interval
        attempts += 1
        interval = min(interval * 2, cap)
    if waited < window_seconds:
        attempts += math.ceil((window_seconds - waited) / cap)
    return RetryPolicy(
        initial_interval=STORE_RETRY_INITIAL,
        backoff_coefficient=2.0,
        maximum_interval=STORE_RETRY_MAX_INTERVAL,
        maximum_attempts=attempts,
    )


WEBHOOK_RETRY_MAX_INTERVAL = timedelta(seconds=30)
#: A large result no output holds is written to Redis (one more local activity for a step
#: without outputs, hence the patch).
STORE_LARGE_RESULTS = "store-large-results"
#: Runs started before this patch deliver their own webhooks (`_send_webhooks`); later runs
#: hand them to a `WebhookOutboxWorkflow`.
WEBHOOK_OUTBOX_PATCH = "webhook-outbox"
#: Runs started before this patch write each step's outputs with a local activity after the
#: call; later runs have the call write them (`OutputTarget`), and run calls as their
#: execution mode places them (before it, every call was a regular activity).
OUTPUTS_IN_CALL_PATCH = "outputs-in-call"
#: Runs started before this patch run each local step as its own local activity; later runs
#: run connected short steps in segments (`workflows.dag.segment`).
SEGMENTS_PATCH = "fast-segments"
#: A rerun emits `step.completed` (with `reused_from`) for each step it reuses.
REUSED_EVENTS_PATCH = "rerun-reused-events"
#: A segment's bound beyond its checkpoint and its longest step's worst case.
SEGMENT_GRACE = timedelta(seconds=10)
#: Tasks of the run loop are keyed by step name; a segment's by this and its first step.
SEGMENT_KEY = "\x00segment:"

#: The statuses `Progress` counts.
COUNTED: frozenset[StepStatus] = frozenset(
    ("completed", "failed", "aborted", "cancelled", "running", "waiting")
)


def step_activity_id(step_name: str) -> str:
    return f"step:{step_name}"


@workflow.defn(failure_exception_types=UNHEALABLE)
class DagWorkflow:
    @workflow.init
    def __init__(self, run: DagRunInput) -> None:
        if run.engine.scheduled_id_prefix is not None:
            # A schedule's runs share one input; each is known by the id Temporal gave it.
            run.workflow_id = workflow.info().workflow_id.removeprefix(
                run.engine.scheduled_id_prefix
            )
        self._run = run
        self._graph = DagGraph.build(run.STEPS_CONFIG)
        self._outbox: list[dict[str, Any]] = []
        self._closing = False
        #: Whether this run runs segments: decided (and recorded) at its first local step.
        self._segments: bool | None = None
        #: Approval steps' decisions (`approval_result`), by step, once taken.
        self._decisions: dict[str, dict[str, Any]] = {}
        #: The run's deadline, when it has approval steps (their waits do not count).
        self._deadline: HeldDeadline | None = None
        #: `llm` steps waiting for a person to raise the run's budget (`on_exceed: pause`),
        #: and the estimates of the budgeted calls in flight, by step (`workflows.dag.budget`).
        self._budget_waits: set[str] = set()
        self._holds: dict[str, Estimate] = {}
        self._prices = PriceTable(models=run.engine.prices)
        if run.resume is not None:
            # Continued as new: the chain is one run to its users.
            self._result = run.resume.result
            self._result.run_id = workflow.info().run_id
            self._variables = run.resume.variables
            self._events = EventLog(run.resume.events, run.resume.sequence)
            self._webhook_degraded = run.resume.webhook_degraded
            self._started = self._result.started_at or workflow.now()
            self._held_seconds = run.resume.held_seconds
            self._count_progress()
            return
        self._started = workflow.now()
        self._held_seconds = 0.0
        # Every step is listed (pending) from the start, so the query answers at once.
        self._result = DagRunResult(
            workflow_id=run.workflow_id,
            run_id=workflow.info().run_id,
            namespace=run.namespace,
            started_at=self._started,
            steps={
                step.step_name: StepState(step_name=step.step_name, usid=step.usid, type=step.type)
                for step in run.STEPS_CONFIG
            },
        )
        self._variables = {
            "original_input": run.original_input,
            "input_data": run.input_data,
            **run.input_data,
        }
        self._events = EventLog()
        self._webhook_degraded = False
        self._result.progress = Progress(total=len(run.STEPS_CONFIG))
        self._result.budget = run.PIPELINE_SETTINGS.budget
        if run.rerun is not None:
            self._variables.update(reuse_steps(self._result, run.rerun))
            self._count_progress()

    @workflow.query
    def get_status(self) -> DagRunResult:
        """Every step's state and the run's progress, live."""
        return self._result

    @workflow.query
    def get_events(self, query: EventsQuery) -> EventPage:
        """The run's events after `query.after`, as its webhooks carry them (the live
        stream, `GET /runs/{id}/events`, polls this)."""
        return self._events.page(query)

    @workflow.update
    def approve(self, approval: Approval) -> dict[str, Any]:
        """A person's decision for a waiting approval step; answers the step's result."""
        decided = approval_result(approval, workflow.now())
        self._decisions[approval.step_name] = decided
        return decided

    @approve.validator
    def _approvable(self, approval: Approval) -> None:
        """Refuse (409 `NotWaiting`, 422 `InvalidApprovalData`) before anything is recorded."""
        step = self._graph.steps.get(approval.step_name)
        state = self._result.steps.get(approval.step_name)
        refused = refusal(
            step.approval if step is not None else None,
            state.status if state is not None else None,
            approval.step_name in self._decisions,
            approval.data,
        )
        if approval.step_name in self._budget_waits and approval.step_name not in self._decisions:
            # An `llm` step paused by the run's budget: the approval must raise it.
            refused = raise_refusal(approval.data) if approval.decision == "approve" else None
        if refused is not None:
            raise errors.non_retryable(*refused)

    @workflow.update
    def pause(self) -> DagRunResult:
        """Start no new step until `resume`; running steps finish, approvals still land.
        Answers the run's status: a query after it would wait for another workflow task,
        0.6 s while a local step holds the task open (`workflows.shared.control`)."""
        if self._result.status == "running":
            self._result.status = "paused"
            self._emit("workflow.paused")
        return self._result

    @workflow.update
    def resume(self) -> DagRunResult:
        """Go on where the run stood; answers its status, as `pause` does."""
        if self._result.status == "paused":
            self._result.status = "running"
            self._emit("workflow.resumed")
        return self._result

    @property
    def _paused(self) -> bool:
        return self._result.status == "paused"

    @workflow.run
    async def run(self, run: DagRunInput) -> DagRunResult:
        # The gateway validates at submission and says so in the input; re-validating here
        # would let a stricter check in a later release fail runs already in flight on replay.
        # Only a run started some other way (the `temporal` CLI) is checked here.
        checked = run.engine.validated or run.resume is not None
        problems = [] if checked else validate_pipeline(run)
        if problems:
            raise errors.run_failed(
                ErrorType.INVALID_PIPELINE,
                "invalid pipeline: " + "; ".join(p.msg for p in problems),
                [p.as_dict() for p in problems],
            )
        webhook_url = run.PIPELINE_SETTINGS.notifications.webhook_url
        drainer = asyncio.create_task(self._drain_outbox(webhook_url)) if webhook_url else None

        if run.resume is None:
            self._emit("workflow.started", data={"total_steps": len(run.STEPS_CONFIG)})
            if run.rerun is not None:
                await self._read_reused_values(run.rerun)
                # Events reach the webhook by activities: runs from before kept fewer.
                if run.rerun.steps and workflow.patched(REUSED_EVENTS_PATCH):
                    for name in run.rerun.steps:
                        self._emit_reused(
                            self._graph.steps[name], self._state(name), unchanged=False
                        )
        scheduler = self._scheduler()
        failure: RunError | None = None
        cancelled = False
        #: The server suggested continuing as new: start nothing more, let running steps end.
        continuing = False
        tasks: dict[str, asyncio.Task[Settled]] = {}
        deadline = self._start_deadline()
        try:
            while True:
                if failure is None:
                    for name in scheduler.cascade_abort():
                        self._abort(name, "an upstream step was aborted")
                if failure is None and not continuing and not self._paused:
                    self._start_ready(scheduler, tasks)
                held = self._paused and failure is None and not continuing
                if not tasks and not (held and scheduler.pending):
                    break
                waiting: list[asyncio.Task[Any]] = list(tasks.values())
                if deadline is not None and failure is None:
                    waiting.append(deadline)
                # Paused: wake on `resume` too, not only when a running step ends.
                resumed = (
                    asyncio.create_task(workflow.wait_condition(lambda: not self._paused))
                    if held
                    else None
                )
                if resumed is not None:
                    waiting.append(resumed)
                try:
                    await workflow.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if resumed is not None and not resumed.done():
                        resumed.cancel()
                if deadline is not None and deadline.done() and failure is None:
                    failure = RunError(
                        type=ErrorType.TIMED_OUT,
                        message=f"the run exceeded its run_timeout of"
                        f" {run.PIPELINE_SETTINGS.timeouts.run_timeout:g}s",
                    )
                    for other in sorted(tasks):
                        tasks[other].cancel()
                for key in sorted(k for k, t in tasks.items() if t.done()):
                    for name, outcome in tasks.pop(key).result():
                        if outcome == "released":
                            scheduler.release(name)
                            continue
                        count_step("dag", outcome)
                        if outcome == "completed":
                            scheduler.complete(name)
                        elif outcome == "aborted":
                            scheduler.abort(name)
                        elif outcome == "cancelled":
                            scheduler.cancel(name)
                        elif outcome == "failed":
                            scheduler.fail(name)
                            if failure is None:
                                failure = self._run_error(name)
                                # Fail fast: nothing new starts and running calls are cancelled.
                                for other in sorted(tasks):
                                    tasks[other].cancel()
                if failure is None and workflow.info().is_continue_as_new_suggested():
                    continuing = True
        except asyncio.CancelledError:
            cancelled = True
            for other in sorted(tasks):
                tasks[other].cancel()
            if tasks:
                await workflow.wait(list(tasks.values()))

        if deadline is not None and not deadline.done():
            deadline.cancel()
        if continuing and failure is None and not cancelled and scheduler.pending:
            await self._continue_as_new(drainer)
        result = self._result
        for name in scheduler.pending:
            if failure is not None or cancelled:
                self._set_status(result.steps[name], "cancelled")
        result.outputs = {
            key: value
            for state in result.steps.values()
            if state.status == "completed"
            for key, value in state.outputs.items()
        }
        result.execution_time_ms = int((workflow.now() - self._started).total_seconds() * 1000)
        result.status = "cancelled" if cancelled else "failed" if failure else "completed"
        result.error = failure
        usage = result.usage
        record_usage(usage.input_tokens, usage.output_tokens, usage.cost_usd, usage.unpriced_models)
        if cancelled:
            self._emit(
                "workflow.cancelled", data={"outputs": result.outputs, **spent(result.usage)}
            )
        elif failure:
            self._emit(
                "workflow.failed",
                data={"error": failure.model_dump(mode="json"), **spent(result.usage)},
            )
        else:
            self._emit(
                "workflow.completed", data={"outputs": result.outputs, **spent(result.usage)}
            )
        if drainer is not None:
            self._closing = True
            await drainer

        if cancelled:
            raise asyncio.CancelledError()
        if failure is not None:
            # Failed in Temporal (Web UI, CLI), with the partial results in the details.
            message = (
                f"step {failure.step_name!r} failed: {failure.message}"
                if failure.step_name
                else failure.message
            )
            raise errors.run_failed(
                ErrorType.PIPELINE_FAILED, message, result.model_dump(mode="json")
            )
        return result

    # -- long runs ---------------------------------------------------------------------

    def _scheduler(self) -> Scheduler:
        """The scheduler, with what the runs before this one in the chain finished, or the
        steps a rerun reused."""
        cap = self._run.engine.max_steps_in_flight
        wanted = self._run.PIPELINE_SETTINGS.concurrency.max_parallel
        scheduler = Scheduler(self._graph, min(wanted or cap, cap))
        if self._run.resume is not None or self._run.rerun is not None:
            for name in self._graph.order:
                status = self._result.steps[name].status
                if status == "completed":
                    scheduler.complete(name)
                elif status == "aborted":
                    scheduler.abort(name)
            scheduler.cascade_abort()  # their dependents were aborted by an earlier run
        return scheduler

    async def _continue_as_new(self, drainer: asyncio.Task[None] | None) -> NoReturn:
        """Hand the steps' state to a fresh run of the chain, with a fresh history."""
        if drainer is not None:
            self._closing = True
            await drainer
        workflow.continue_as_new(
            self._run.model_copy(
                update={
                    "resume": DagResume(
                        result=self._result,
                        variables=self._variables,
                        sequence=self._events.sequence,
                        events=self._events.carry(),
                        webhook_degraded=self._webhook_degraded,
                        held_seconds=(
                            self._deadline.held_seconds
                            if self._deadline is not None
                            else self._held_seconds
                        ),
                    ),
                    # A rerun's reused steps are in the result now: not carried twice.
                    # Its steps not reached yet may still turn out unchanged.
                    "rerun": self._unreached_candidates(),
                }
            )
        )

    # -- steps -------------------------------------------------------------------------

    def _start_ready(self, scheduler: Scheduler, tasks: dict[str, asyncio.Task[Settled]]) -> None:
        """Start the ready steps: short local ones together in a segment, with the steps
        below them it can run too; every other step on its own."""
        taken = scheduler.take_ready()
        inline = [name for name in taken if self._inline(name)]
        alone = set(taken).difference(inline)
        for name in taken:
            if name in alone:
                tasks[name] = asyncio.create_task(self._single(name))
        if inline:
            alongside = len(scheduler.running) - len(inline)
            room = MAX_SEGMENT_STEPS if scheduler.max_parallel is None else scheduler.max_parallel
            below = scheduler.claim(inline, self._inline, MAX_SEGMENT_STEPS - len(inline))
            tasks[SEGMENT_KEY + inline[0]] = asyncio.create_task(
                self._run_segment(inline, below, max(room - alongside, len(inline)))
            )

    async def _single(self, name: str) -> Settled:
        return [(name, await self._run_step(name))]

    async def _run_step(self, name: str) -> StepOutcome:
        step = self._graph.steps[name]
        state = self._state(name)
        try:
            reason = await self._selection_refusal(step)
        except StepFailed as exc:
            return self._fail(step, state, StepError(**vars(exc.failure)))
        except asyncio.CancelledError:
            return self._cancel(state)
        if reason is not None:
            self._abort(name, reason)
            return "aborted"
        rerun = self._run.rerun
        if rerun is not None and self._unchanged(step, rerun):
            self._take_unchanged(step, rerun)
            return "completed"
        self._start(step, state)
        return await self._call_started(name)

    def _unchanged(self, step: StepConfig, rerun: DagRerun) -> bool:
        """Whether a rerun takes this step from its source after all: its edits left its
        request as it was (`workflows.dag.rerun`)."""
        if step.step_name not in rerun.edited:
            return False
        upstream = self._graph.upstream[step.step_name]
        upstream_reused = all(self._state(name).reused_from is not None for name in upstream)
        key = self._request_key(step) if upstream_reused else None
        return is_unchanged(rerun, step.step_name, key, upstream_reused)

    def _request_key(self, step: StepConfig) -> str | None:
        """The result-cache key of the request the step would make now; None for a step
        that makes none, or whose request does not render (its call will say why)."""
        try:
            if step.type == "http":
                return http_cache_key(self._build_call(step))
            if step.type == "llm":
                call = build_llm_call(
                    step, self._variables, max_request_chars=self._run.engine.max_request_chars
                )
                call.tenant = self._run.engine.tenant
                return llm_cache_key(call)
        except StepFailed:
            return None
        return None

    def _unreached_candidates(self) -> DagRerun | None:
        """What a rerun hands on when it continues as new: the steps that may still turn out
        unchanged (`_unchanged`), none of those it reused already."""
        rerun = self._run.rerun
        if rerun is None or not rerun.edited:
            return None
        pending = {
            name: state
            for name, state in rerun.edited.items()
            if self._state(name).status == "pending"
        }
        return DagRerun(source=rerun.source, edited=pending) if pending else None

    def _take_unchanged(self, step: StepConfig, rerun: DagRerun) -> None:
        self._variables.update(take_unchanged(self._result, rerun, step.step_name))
        taken = self._state(step.step_name)
        taken.status = "pending"  # counted once, as it completes in this run
        self._set_status(taken, "completed")
        self._emit_reused(step, taken, unchanged=True)

    def _emit_reused(self, step: StepConfig, state: StepState, *, unchanged: bool) -> None:
        """A reused step's `step.completed`, saying which run made its call, so watchers of
        the stream and the webhook see every step complete."""
        self._emit(
            "step.completed",
            step,
            {
                "result": state.result,
                "outputs": state.outputs,
                "reused_from": state.reused_from,
                "unchanged": unchanged,
            },
        )

    async def _call_started(self, name: str) -> StepOutcome:
        """Make a started step's call and record how it ended."""
        step = self._graph.steps[name]
        state = self._state(name)
        try:
            if step.map_over is not None:
                await self._complete(step, state, await self._run_map(step, state), attempt=1)
            elif step.type == "llm":
                body, attempt = await self._ask_model(step, state)
                await self._complete(step, state, body, attempt=attempt)
            elif step.type == "instructions":
                body = await self._run_child(step, state)
                await self._complete(step, state, body, attempt=1)
            elif step.type == "approval":
                body = await self._await_approval(step, state)
                await self._complete(step, state, body, attempt=1)
            else:
                result = await self._call(step)
                show_cached(self._result, state, result)
                state.request_key = result.request_key
                await self._complete(
                    step,
                    state,
                    result.body,
                    attempt=result.attempt,
                    http_status=result.status,
                    written_keys=result.stored,
                )
            return "completed"
        except StepFailed as exc:
            return self._fail(step, state, StepError(**vars(exc.failure)))
        except asyncio.CancelledError:
            return self._cancel(state)

    def _start(self, step: StepConfig, state: StepState, at: datetime | None = None) -> None:
        self._set_status(state, "running")
        state.started_at = at or workflow.now()
        self._emit("step.started", step)

    async def _complete(
        self,
        step: StepConfig,
        state: StepState,
        body: Any,
        *,
        attempt: int,
        http_status: int | None = None,
        written_keys: list[str] | None = None,
    ) -> None:
        """Record a step's result and outputs; write what its call could not write
        (`written_keys`: the Redis keys an HTTP call wrote itself).

        Raises:
            StepFailed: Redis could not take the outputs the call did not write.
        """
        name = step.step_name
        value = main_value(body)
        state.http_status = http_status
        state.attempts = attempt
        outputs = {output: value for output in step.outputs}
        # The state (status, result, failure details, events) shows large values by
        # reference; templates keep reading the whole values from `_variables`.
        view = step_view(
            self._run.workflow_id, name, body, outputs, self._run.engine.value_inline_max_bytes
        )
        state.result = view.result
        state.outputs = view.outputs
        stored = dict(outputs)
        if view.store_result:
            if outputs or workflow.patched(STORE_LARGE_RESULTS):
                stored = {result_variable(name): body, **outputs}
            else:
                state.result = body  # a run from before results were stored: as it was
        # What the call could not write (Redis failed it, or a run from before the patch).
        written = set(written_keys or ())
        unwritten = {key: value for key, value in stored.items() if self._key(key) not in written}
        if unwritten:
            await self._store_outputs(unwritten)
        self._variables[result_variable(name)] = body
        self._variables.update(outputs)
        self._set_status(state, "completed")
        state.finished_at = workflow.now()
        self._emit(
            "step.completed",
            step,
            {"result": state.result, "outputs": state.outputs, **spent(state.usage)},
        )

    def _fail(self, step: StepConfig, state: StepState, error: StepError) -> StepOutcome:
        self._set_status(state, "failed")
        state.error = error
        state.attempts = error.attempts
        state.http_status = error.http_status
        state.finished_at = workflow.now()
        self._emit("step.failed", step, {"error": error.model_dump(mode="json")})
        return "failed"

    def _cancel(self, state: StepState) -> StepOutcome:
        self._set_status(state, "cancelled")
        state.finished_at = workflow.now()
        return "cancelled"

    # -- segments ----------------------------------------------------------------------

    def _inline(self, name: str) -> bool:
        """Whether a step runs in a segment: its call is placed local (`runs_local`), and it
        has no selection to read first."""
        step = self._graph.steps[name]
        rerun = self._run.rerun
        if (
            step.type != "http"
            or (rerun is not None and name in rerun.edited)  # checked before its call
            or step.map_over is not None
            or self._run.engine.execution_mode == "durable"
            or self._graph.selections[name]
            or self._route(step) is not None
            or self._placement(step, routed=False) != "local"
        ):
            return False
        if self._segments is None:
            self._segments = workflow.patched(SEGMENTS_PATCH)
        return self._segments

    def _segment_step(self, name: str) -> SegmentStep:
        step = self._graph.steps[name]
        max_retries, retry_delay = self._retries(step)
        return SegmentStep(
            config=step,
            upstream=self._graph.upstream[name],
            timeout_seconds=self._timeout(step),
            max_retries=max_retries,
            retry_delay=retry_delay,
            outputs=self._output_target(step),
            idempotency_key=self._idempotency_key(step),
            cache=step_caching(self._run, step),
        )

    async def _run_segment(self, roots: list[str], below: list[str], max_parallel: int) -> Settled:
        """Run `roots` and the steps claimed `below` them in one local activity; settle each
        step it reports, in the order they ended, and release the ones it did not start."""
        for name in roots:
            self._start(self._graph.steps[name], self._state(name))
        engine = self._run.engine
        members = [*roots, *below]
        steps = [self._segment_step(name) for name in members]
        wanted = set().union(*(variables_read(step.config, step.upstream) for step in steps))
        segment = Segment(
            steps=steps,
            roots=roots,
            variables={
                name: self._variables[name] for name in sorted(wanted) if name in self._variables
            },
            original_input=self._run.original_input,
            input_data=self._run.input_data,
            max_request_chars=engine.max_request_chars,
            tenant=engine.tenant,
            max_parallel=max_parallel,
        )
        released: Settled = [(name, "released") for name in below]
        try:
            report = await workflow.execute_local_activity(
                RUN_SEGMENT,
                segment,
                result_type=SegmentReport,
                # Steps start until the checkpoint, and each then runs its course.
                start_to_close_timeout=timedelta(
                    seconds=CHECKPOINT_SECONDS
                    + max(
                        worst_case_seconds(step.timeout_seconds, step.max_retries, step.retry_delay)
                        for step in steps
                    )
                )
                + SEGMENT_GRACE,
                retry_policy=RetryPolicy(maximum_attempts=1),
                summary=f"{len(members)} steps from {roots[0]}",
            )
        except asyncio.CancelledError:
            return [(name, self._cancel(self._state(name))) for name in roots] + released
        except FailureError as exc:
            if is_cancelled_exception(exc):
                return [(name, self._cancel(self._state(name))) for name in roots] + released
            # The segment itself failed (its worker, not a step): its first steps are made
            # one by one, as local activities with their own retries.
            workflow.logger.warning("segment from %s failed, steps run alone: %s", roots[0], exc)
            ended = await asyncio.gather(*(self._call_started(name) for name in roots))
            return [*zip(roots, ended, strict=True), *released]
        settled: Settled = []
        for item in report.steps:
            settled.append((item.name, await self._settle(item, started=item.name in roots)))
        reported = {item.name for item in report.steps}
        return settled + [(name, "released") for name in members if name not in reported]

    async def _settle(self, item: StepReport, *, started: bool) -> StepOutcome:
        """Record one step of a segment as its own call would have ended."""
        step = self._graph.steps[item.name]
        state = self._state(item.name)
        if not started:
            self._start(step, state, workflow.now() - timedelta(milliseconds=item.duration_ms))
        try:
            if item.result is not None:
                show_cached(self._result, state, item.result)
                state.request_key = item.result.request_key
                await self._complete(
                    step,
                    state,
                    item.result.body,
                    attempt=item.result.attempt,
                    http_status=item.result.status,
                    written_keys=item.result.stored,
                )
                return "completed"
            if item.error is not None:
                return self._fail(step, state, item.error)
        except StepFailed as exc:
            return self._fail(step, state, StepError(**vars(exc.failure)))
        except asyncio.CancelledError:
            pass
        return self._cancel(state)

    async def _selection_refusal(self, step: StepConfig) -> str | None:
        """Why the step must be aborted by its selection dependencies, or None to run it."""
        for selection in self._graph.selections[step.step_name]:
            if selection in self._variables:
                raw = self._variables[selection]
                selected = (
                    [str(v) for v in raw] if isinstance(raw, list) else parse_selection(str(raw))
                )
            else:
                key = self._key(selection)
                try:
                    read = await workflow.execute_local_activity(
                        READ_SELECTION,
                        SelectionRead(key=key),
                        result_type=list[str] | None,  # type: ignore[arg-type]
                        start_to_close_timeout=STORE_TIMEOUT,
                        retry_policy=self._store_retry,
                    )
                except FailureError as exc:
                    # Redis unreachable fails this step like a failed call (fail fast, partial
                    # results), instead of failing the whole run with the raw failure.
                    raise self._store_failure(exc) from exc
                if read is None:
                    return f"{selection} is not set (no step output, no Redis key {key!r})"
                selected = read
            if step.usid not in selected:
                return f"usid {step.usid!r} is not in {selection} {selected}"
        return None

    def _build_call(self, step: StepConfig) -> HttpCall:
        engine = self._run.engine
        return build_call(
            step,
            self._variables,
            upstream=self._graph.upstream[step.step_name],
            original_input=self._run.original_input,
            input_data=self._run.input_data,
            max_request_chars=engine.max_request_chars,
            timeout_seconds=self._timeout(step),
            idempotency_key=self._idempotency_key(step),
            tenant=engine.tenant,
            cache=step_caching(self._run, step),
        )

    def _idempotency_key(self, step: StepConfig) -> str | None:
        if not self._run.PIPELINE_SETTINGS.error_handling.idempotency_keys:
            return None
        return idempotency_key(workflow.info().first_execution_run_id, step.step_name)

    def _route(self, step: StepConfig) -> str | None:
        """The endpoint worker's queue named by the step (validated up front), else None."""
        return resolve_endpoint(step.endpoint, self._run.engine.endpoint_workers).task_queue

    def _timeout(self, step: StepConfig) -> float:
        return step_timeout(self._run, step)

    def _retries(self, step: StepConfig) -> tuple[int, float]:
        return step_retries(self._run, step)

    def _placement(self, step: StepConfig, routed: bool) -> Placement:
        return "local" if call_runs_local(self._run, step, routed=routed) else "activity"

    def _output_target(self, step: StepConfig) -> OutputTarget:
        """Where the call writes the step's outputs (`OutputTarget`, the rule of `step_view`)."""
        engine = self._run.engine
        return OutputTarget(
            keys=[self._key(output) for output in step.outputs],
            result_key=self._key(result_variable(step.step_name)),
            result_over_bytes=engine.value_inline_max_bytes,
            ttl_seconds=engine.output_ttl_seconds,
        )

    async def _call(self, step: StepConfig) -> HttpResult:
        call = self._build_call(step)
        max_retries, retry_delay = self._retries(step)
        route = self._route(step)
        placement: Placement = "activity"
        # Checked once per run (the SDK remembers it): every step of a run placed the same way.
        if workflow.patched(OUTPUTS_IN_CALL_PATCH):
            placement = self._placement(step, routed=route is not None)
            if route is None:
                # An endpoint worker may sit on another network, without this Redis.
                call.outputs = self._output_target(step)
        return await execute_call(
            call,
            placement=placement,
            max_attempts=max_retries + 1,
            retry_policy=step_retry_policy(max_retries, retry_delay),
            # Named after the step, so the gateway can match Temporal's pending-activity view
            # (current attempt, last failure) to it while the step is retried.
            activity_id=step_activity_id(step.step_name),
            task_queue=route or self._run.engine.task_queue,
            summary=f"{step.method} {step.step_name}",
        )

    async def _ask_model(self, step: StepConfig, state: StepState) -> tuple[Any, int]:
        """An `llm` step's call: always a regular activity, whatever the execution mode (a
        model may answer for minutes and bills every token, so a finished answer must never
        be asked again because a worker running a local activity crashed). Returns the
        step's result and the attempt that answered.

        Raises:
            StepFailed: the call failed for good (`InvalidModelOutput` among others).
            asyncio.CancelledError: the call was cancelled.
        """
        call = build_llm_call(
            step, self._variables, max_request_chars=self._run.engine.max_request_chars
        )
        call.tenant, call.cache = self._run.engine.tenant, step_caching(self._run, step)
        if self._result.budget is not None:
            call, self._holds[step.step_name] = await self._within_budget(step, state, call)
        state.provider, state.model = call.provider, call.model
        state.request_key = llm_cache_key(call)
        max_retries, retry_delay = self._retries(step)
        timeout = timedelta(seconds=self._timeout(step))
        # The wait for a rate-limit slot comes on top of the step's timeout, which bounds the
        # request alone (`activities.llm.pacing`).
        call.timeout_seconds = timeout.total_seconds()
        try:
            answer = await workflow.execute_activity(
                CALL_LLM,
                call,
                result_type=LlmText,
                activity_id=step_activity_id(step.step_name),
                start_to_close_timeout=timeout + MAX_RATE_LIMIT_WAIT,
                heartbeat_timeout=heartbeat_timeout(timeout),
                retry_policy=step_retry_policy(max_retries, retry_delay),
                summary=f"llm {step.step_name}",
            )
        except FailureError as exc:
            raise step_failed(exc, max_retries + 1, call.label) from exc
        finally:
            self._holds.pop(step.step_name, None)
        show_answer(state, answer)
        show_cached(self._result, state, answer)
        self._add_usage(state, answer_usage(answer))
        return llm_result(call, answer), answer.attempt

    async def _within_budget(
        self, step: StepConfig, state: StepState, call: LlmCall
    ) -> tuple[LlmCall, Estimate]:
        """The call to make within the run's budget, and its estimate: `call` itself, or as
        `on_exceed` makes it (`workflows.dag.budget`).

        Raises:
            StepFailed: `BudgetExceeded` (`fail`, a downgrade that does not fit, a rejection).
            asyncio.CancelledError: the run was cancelled while the step waited.
        """
        engine = self._run.engine
        while (budget := self._result.budget) is not None:
            guess = estimate(call, self._prices, engine.llm_max_tokens)
            held = sum(self._holds.values(), NOTHING)
            used = Estimate(
                self._result.usage.input_tokens + self._result.usage.output_tokens,
                self._result.usage.cost_usd,
            )
            reason = overrun(budget, used + held, guess)
            if reason is None:
                return call, guess
            chain = fallback_chain(call.fallback, engine.llm_fallback_chain)
            cheaper = cheapest(call, chain, self._prices, engine.llm_max_tokens)
            if (
                budget.on_exceed == "downgrade"
                and cheaper is not None
                and cheaper.model != call.model
            ):
                call = call.model_copy(
                    update={"provider": cheaper.provider, "model": cheaper.model}
                )
            elif budget.on_exceed == "pause":
                await self._await_budget(step, state, budget, reason)
            else:
                raise StepFailed.of(ErrorType.BUDGET_EXCEEDED, f"{step_label(step)}: {reason}")
        return call, NOTHING

    async def _await_budget(
        self, step: StepConfig, state: StepState, budget: Budget, reason: str
    ) -> None:
        """Wait (status `waiting`, event `step.waiting`) for an approval that raises the
        run's budget; the run's deadline is held meanwhile.

        Raises:
            StepFailed: `BudgetExceeded`, rejected or not decided within `wait_timeout`.
        """
        name, label = step.step_name, step_label(step)
        seconds = self._run.PIPELINE_SETTINGS.timeouts.wait_timeout
        message = (
            f"{label}: {reason}. Approve with data"
            ' {"max_cost_usd": <USD>} to raise the budget, or reject to fail the step.'
        )
        raising = ApprovalStep(message=message, on_timeout="fail", schema=RAISE_SCHEMA)
        self._budget_waits.add(name)
        self._set_status(state, "waiting")
        self._emit(
            "step.waiting",
            step,
            {**waiting_data(message, seconds, raising), "budget": budget.model_dump(mode="json")},
        )
        try:
            _, timed_out = await await_decision(
                self._decisions, name, raising, seconds, self._deadline, summary=f"budget {name}"
            )
        finally:
            self._budget_waits.discard(name)
        if timed_out:
            del self._decisions[name]
            raise StepFailed.of(
                ErrorType.BUDGET_EXCEEDED, f"{label}: {reason}; nobody raised it in time"
            )
        decision = self._decisions.pop(name)
        if decision["decision"] == "reject":
            raise StepFailed.of(
                ErrorType.BUDGET_EXCEEDED, f"{label}: {reason}; rejected by {decision['by']}"
            )
        self._result.budget = raised(budget, decision["data"])
        self._set_status(state, "running")

    async def _run_child(self, step: StepConfig, state: StepState) -> Any:
        """An `instructions` step: a child instruction run, whose final status is the step's
        result. Its id derives from this run's, so the Web UI shows it under its parent and
        the tenant that owns the parent owns it; cancelling this run cancels it, and the
        tokens it billed count as this run's.

        Raises:
            StepFailed: the child run failed (its error, named for the step).
            asyncio.CancelledError: this step was cancelled (the child is cancelled with it).
        """
        engine = self._run.engine
        child = build_child_run(
            step,
            self._variables,
            max_request_chars=engine.max_request_chars,
            engine=engine.instruction_engine,
            execution_mode=engine.execution_mode,
        )
        if self._result.budget is not None:
            held = sum(self._holds.values(), NOTHING)
            child["engine"] = child_engine(
                child["engine"], self._result.budget, self._result.usage, held
            )

        info = workflow.info()
        child_id = f"{info.workflow_id}:{step.step_name}"
        state.child_workflow_id = child_id
        state.provider = str(child.get("provider") or "openai")
        state.model = child.get("model")
        attributes = info.typed_search_attributes
        if attributes.get(ENGINE) is not None:
            attributes = attributes.updated(
                SearchAttributePair(ENGINE, "instructions"),
                SearchAttributePair(SEED_ID, f"{self._run.workflow_id}:{step.step_name}"),
            )
        try:
            status = await workflow.execute_child_workflow(
                INSTRUCTION_WORKFLOW,
                child,
                id=child_id,
                task_queue=engine.task_queue,
                task_timeout=workflow_task_timeout(
                    child["engine"]["execution_mode"] != "durable", len(child["instructions"])
                ),
                result_type=dict,
                search_attributes=attributes if len(attributes) else None,
                static_summary=f"instructions step {step.step_name} of {self._run.workflow_id}",
            )
        except ChildWorkflowError as exc:
            task = asyncio.current_task()
            if is_cancelled_exception(exc) and task is not None and task.cancelling():
                # This step was cancelled (the run was, or a sibling failed), and the child
                # with it: the step is cancelled, not failed.
                raise asyncio.CancelledError() from exc
            raise self._child_failure(step, state, exc) from exc
        self._add_usage(state, child_usage(status))
        return status

    async def _run_map(self, step: StepConfig, state: StepState) -> list[Any]:
        """A `map_over` step (`workflows.dag.map_run`): its items' results in input order.

        Raises:
            StepFailed: `map_over` is no list, or the failed items passed the tolerance (the
                results so far are kept, for a rerun to reuse).
            asyncio.CancelledError: the step was cancelled.
        """
        items = resolve_items(step.map_over or "", self._variables, step.step_name)
        options = step.map or MapOptions()
        engine = self._run.engine
        allowed = options.allowed_failures(len(items))
        state.items = MapCounts(total=len(items))
        outcome = await run_map(
            self._map_work(step, allowed),
            items,
            options,
            state.items,
            concurrency=min(options.concurrency, engine.max_steps_in_flight),
            inline_max_items=engine.map_inline_max_items,
            kept=await self._kept_items(step.step_name, len(items)),
        )
        self._add_usage(state, outcome.usage)
        state.item_errors = outcome.errors
        state.failed_items = failed_indices(outcome.errors)
        if len(outcome.errors) > allowed:
            view = step_view(
                self._run.workflow_id,
                step.step_name,
                outcome.results,
                {},
                engine.value_inline_max_bytes,
            )
            state.result = view.result
            if view.store_result:
                await self._store_outputs({result_variable(step.step_name): outcome.results})
            raise StepFailed(
                StepFailure(
                    type=ErrorType.MAP_TOLERANCE_EXCEEDED,
                    message=tolerance_message(
                        step.step_name, len(outcome.errors), len(items), options
                    ),
                )
            )
        return outcome.results

    def _map_work(self, step: StepConfig, allowed_failures: int) -> MapWork:
        """Every decision about a mapped step's items, made once here for every item."""
        engine = self._run.engine
        info = workflow.info()
        max_retries, retry_delay = self._retries(step)
        route = self._route(step)
        upstream = self._graph.upstream[step.step_name]
        # Not the mapped list itself (unless a template reads it): each batch carries its items.
        wanted = variables_read(step.model_copy(update={"map_over": None}), upstream)
        prep = step.input_prep_config
        default_body = (
            step.type == "http"
            and step.method in DEFAULT_BODY_METHODS
            and not (prep is not None and prep.has_body)
        )
        return MapWork(
            step=step,
            variables={
                name: self._variables[name] for name in sorted(wanted) if name in self._variables
            },
            upstream=upstream,
            # Only a default body sends the run's input; otherwise each batch would carry it,
            # and the input often holds the very list being mapped.
            original_input=self._run.original_input if default_body else None,
            input_data=self._run.input_data if default_body else {},
            max_request_chars=engine.max_request_chars,
            timeout_seconds=self._timeout(step),
            max_retries=max_retries,
            retry_delay=retry_delay,
            placement=self._placement(step, routed=route is not None)
            if step.type == "http"
            else "activity",
            task_queue=route or engine.task_queue,
            tenant=engine.tenant,
            idempotency_run=(
                info.first_execution_run_id
                if self._run.PIPELINE_SETTINGS.error_handling.idempotency_keys
                else None
            ),
            cache=step_caching(self._run, step),
            instruction_engine=engine.instruction_engine,
            execution_mode=engine.execution_mode,
            child_id_prefix=f"{info.workflow_id}:{step.step_name}",
            allowed_failures=allowed_failures,
        )

    async def _kept_items(self, name: str, total: int) -> dict[int, Any] | None:
        """A rerun's item results that it keeps from its source (every item but the failed
        ones), read back from Redis when the source kept them by reference."""
        carry = self._run.rerun.map_items.get(name) if self._run.rerun is not None else None
        if carry is None:
            return None
        results = carry.results
        if is_reference(results):
            run_id, stored = stored_name(results[REF])
            engine = self._run.engine
            try:
                read = await workflow.execute_local_activity(
                    READ_VALUES,
                    ValuesRead(
                        keys={
                            "results": redis_key(engine.tenant, self._run.namespace, run_id, stored)
                        }
                    ),
                    result_type=dict[str, Any],
                    start_to_close_timeout=STORE_TIMEOUT,
                    retry_policy=self._store_retry,
                )
            except FailureError as exc:
                raise self._store_failure(exc) from exc
            results = read.get("results")
        return carried_indices(total, results, carry.failed_items)

    def _child_failure(
        self, step: StepConfig, state: StepState, exc: ChildWorkflowError
    ) -> StepFailed:
        """The step's failure for a child run that failed, timed out or was cancelled by
        someone else; the tokens the child billed before it ended still count."""
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.details:
            self._add_usage(state, child_usage(cause.details[0]))
        kind: str = ErrorType.INSTRUCTION_FAILED
        message = str(exc)
        if isinstance(cause, CancelledError):
            kind, message = ErrorType.CANCELLED, "its child instruction run was cancelled"
        elif isinstance(cause, FailureError):
            kind, message = errors.error_type_of(cause), cause.message
        return StepFailed(StepFailure(type=kind, message=f"{step_label(step)}: {message}"))

    async def _await_approval(self, step: StepConfig, state: StepState) -> Any:
        """An `approval` step: wait (status `waiting`, event `step.waiting`) for the `approve`
        update or the step's timeout; the run's deadline is held meanwhile. Returns the
        decision when it approves.

        Raises:
            StepFailed: rejected, timed out with `on_timeout: fail`, or a bad message template.
            asyncio.CancelledError: the run was cancelled (or a sibling failed) meanwhile.
        """
        name = step.step_name
        approval = approval_of(step)
        message = approval_message(
            approval, step, self._variables, max_chars=self._run.engine.max_request_chars
        )
        seconds = wait_seconds(approval, self._run.PIPELINE_SETTINGS.timeouts.wait_timeout)
        self._set_status(state, "waiting")
        self._emit("step.waiting", step, waiting_data(message, seconds, approval))
        decision, timed_out = await await_decision(
            self._decisions, name, approval, seconds, self._deadline
        )
        return approved_result(step, decision, timed_out=timed_out)

    def _start_deadline(self) -> asyncio.Task[None] | None:
        """The run's deadline: one timer, or for a pipeline with approval steps one that
        stops while they wait (`HeldDeadline`; no run recorded before it has such steps)."""
        settings = self._run.PIPELINE_SETTINGS
        run_timeout = settings.timeouts.run_timeout
        pauses = settings.budget is not None and settings.budget.on_exceed == "pause"
        if run_timeout is None or not (
            pauses or any(s.type == "approval" for s in self._run.STEPS_CONFIG)
        ):
            return run_deadline(run_timeout, self._started)
        self._deadline = HeldDeadline(run_timeout, self._started, self._held_seconds)
        return self._deadline.start()

    def _add_usage(self, state: StepState, usage: Usage) -> None:
        state.usage = (state.usage or Usage()) + usage
        self._result.usage = self._result.usage + usage

    async def _read_reused_values(self, rerun: DagRerun) -> None:
        """Read the whole values a rerun's source kept by reference, for templates; one
        that has expired stays its reference."""
        keys = stored_references(rerun, self._run.engine.tenant, self._run.namespace)
        if not keys:
            return
        try:
            values = await workflow.execute_local_activity(
                READ_VALUES,
                ValuesRead(keys=keys),
                result_type=dict[str, Any],
                start_to_close_timeout=STORE_TIMEOUT,
                retry_policy=self._store_retry,
            )
        except FailureError as exc:
            raise errors.run_failed(
                ErrorType.PIPELINE_FAILED,
                f"could not read the reused values of {rerun.source!r}: {exc}",
                self._result.model_dump(mode="json"),
            ) from exc
        self._variables.update(values)

    async def _store_outputs(self, outputs: dict[str, Any]) -> None:
        try:
            await workflow.execute_local_activity(
                WRITE_OUTPUTS,
                OutputWrite(
                    values={self._key(name): value for name, value in outputs.items()},
                    ttl_seconds=self._run.engine.output_ttl_seconds,
                ),
                start_to_close_timeout=STORE_TIMEOUT,
                retry_policy=self._store_retry,
            )
        except FailureError as exc:
            raise self._store_failure(exc) from exc

    @property
    def _store_retry(self) -> RetryPolicy:
        return store_retry_policy(self._run.engine.store_retry_window_seconds)

    def _store_failure(self, exc: FailureError) -> BaseException:
        window = self._run.engine.store_retry_window_seconds
        return step_failed(
            exc,
            self._store_retry.maximum_attempts,
            f"redis (retried for {window:g}s, STORE_RETRY_WINDOW_SECONDS)",
        )

    # -- state, events -----------------------------------------------------------------

    def _key(self, name: str) -> str:
        run = self._run
        return redis_key(run.engine.tenant, run.namespace, run.workflow_id, name)

    def _state(self, name: str) -> StepState:
        return self._result.steps[name]

    def _abort(self, name: str, reason: str) -> None:
        state = self._state(name)
        self._set_status(state, "aborted")
        state.abort_reason = reason
        state.finished_at = workflow.now()
        self._emit("step.aborted", self._graph.steps[name], {"reason": reason})

    def _run_error(self, name: str) -> RunError:
        state = self._state(name)
        error = state.error or StepError(type=ErrorType.UNKNOWN, message="step failed")
        return RunError(
            step_name=name,
            usid=state.usid,
            type=error.type,
            message=error.message,
            http_status=error.http_status,
            attempts=error.attempts,
        )

    def _set_status(self, state: StepState, status: StepStatus) -> None:
        """Move a step to `status`, keeping the progress counts in step: O(1) per change."""
        progress = self._result.progress
        if state.status in COUNTED:
            setattr(progress, state.status, getattr(progress, state.status) - 1)
        if status in COUNTED:
            setattr(progress, status, getattr(progress, status) + 1)
        state.status = status

    def _count_progress(self) -> None:
        """Count every step once, for a run that continued as new: the run before it may
        have handed over counts it had not refreshed (counted on demand before)."""
        counts = Progress(total=len(self._result.steps))
        for state in self._result.steps.values():
            if state.status in COUNTED:
                setattr(counts, state.status, getattr(counts, state.status) + 1)
        self._result.progress = counts

    def _emit(self, event: str, step: StepConfig | None = None, data: Any = None) -> None:
        """Log an event (every run has its live stream) and queue it for the webhook, if any.

        Only the run's memory changes, never its commands: runs recorded when events were
        numbered for webhooks only replay as they ran."""
        info = workflow.info()
        sequence = self._events.next_sequence()
        payload: dict[str, Any] = {
            "event": event,
            # Stable across delivery retries and redeliveries (and the same in every run of
            # a chain that continued as new), so receivers can de-duplicate.
            "event_id": f"{info.first_execution_run_id}:{sequence}",
            "sequence": sequence,
            "workflow_id": self._run.workflow_id,
            "run_id": info.run_id,
            "namespace": self._run.namespace,
            "timestamp": workflow.now().isoformat(),
            "progress": self._result.progress.model_dump(
                include={"completed", "failed", "aborted", "total"}
            ),
            "data": data,
            # Whose run sent it, under the webhook's signature (`activities.http.signing`).
            "tenant": self._run.engine.tenant or DEFAULT_TENANT,
        }
        if step is not None:
            payload["step_name"] = step.step_name
            payload["usid"] = step.usid
        self._events.append(payload)
        if self._run.PIPELINE_SETTINGS.notifications.webhook_url:
            self._outbox.append(payload)

    async def _drain_outbox(self, url: str) -> None:
        """Hand the run's events to its webhook outbox, which delivers them after the run if
        need be; the run's end waits for the hand-over only."""
        if not workflow.patched(WEBHOOK_OUTBOX_PATCH):
            await self._send_webhooks(url)
            return
        info = workflow.info()
        engine = self._run.engine
        outbox = OutboxInput(
            url=url,
            workflow_id=self._run.workflow_id,
            namespace=self._run.namespace,
            tenant=engine.tenant,
            policy=DeliveryPolicy(
                attempt_timeout_seconds=engine.webhook_attempt_timeout_seconds,
                window_seconds=engine.webhook_delivery_window_seconds,
                retry_max_interval_seconds=engine.webhook_retry_max_interval_seconds,
            ),
            run_deadline=(
                workflow.now() + info.execution_timeout if info.execution_timeout else None
            ),
        )
        await forward_to_outbox(
            outbox,
            outbox_workflow_id(info.workflow_id, info.first_execution_run_id),
            self._outbox,
            lambda: self._closing,
            self._result.webhooks,
        )

    async def _send_webhooks(self, url: str) -> None:
        """Runs recorded before outboxes: deliver events one at a time, in order.

        Each event is retried for at most WEBHOOK_DELIVERY_TIMEOUT_SECONDS. Once one event
        could not be delivered in that time the receiver is taken as down: later events are
        counted as undelivered instead of sent, so a dead receiver delays the end of a run by
        one delivery budget at most, however many events follow.
        """
        engine = self._run.engine
        webhooks = self._result.webhooks
        while True:
            await workflow.wait_condition(lambda: bool(self._outbox) or self._closing)
            if not self._outbox:
                return
            event = self._outbox.pop(0)
            if self._webhook_degraded:
                webhooks.undelivered += 1
                continue
            try:
                await workflow.execute_activity(
                    SEND_WEBHOOK,
                    WebhookDelivery(url=url, event=event, tenant=engine.tenant),
                    start_to_close_timeout=timedelta(
                        seconds=engine.webhook_attempt_timeout_seconds
                    ),
                    schedule_to_close_timeout=timedelta(
                        seconds=engine.webhook_delivery_timeout_seconds
                    ),
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(seconds=1),
                        maximum_interval=WEBHOOK_RETRY_MAX_INTERVAL,
                        non_retryable_error_types=errors.NON_RETRYABLE_TYPES,
                    ),
                    summary=f"webhook {event['event']}",
                )
                webhooks.delivered += 1
            except ActivityError as exc:
                self._webhook_degraded = True
                webhooks.undelivered += 1
                webhooks.last_error = str(exc.cause or exc)[:500]
                workflow.logger.warning(
                    "webhook %s #%s not delivered: %s", event["event"], event["sequence"], exc.cause
                )
