"""`InstructionWorkflow`: the seed's queue-based LLM engine as a thin loop over `InstructionPlan`.

Each step works on the previous executed step's result (the first on the run's context). LLM
steps, LLM-judged conditions and router choices are `LlmActivities`; endpoint calls are the one
HTTP activity, `HttpActivities.call_http`, with the instruction's retries, backoff and timeout as
its Temporal retry policy. Deterministic conditions and thread formatting run in the workflow
itself (pure, replay-safe code). The status query shows every step as it goes.

An `approval` step waits for the `approve` update (`workflows.shared.approval_wait`, as a DAG
approval step does); the run's deadline does not count that wait. A rerun
(`workflows.instructions.rerun`) starts with the reused steps' states and the queue its source
had when it reached the first step that runs again, so it makes no call for them.

A step that fails for good ends the run: the workflow fails with `InstructionFailed`, whose
details hold the status at that moment (partial results included), as `DagWorkflow` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from activities.http.models import (
        CALL_HTTP,
        HttpResult,
        idempotency_key,
        with_idempotency_key,
    )
    from activities.llm.models import (
        CALL_LLM,
        CHOOSE_ROUTE,
        JUDGE_CONDITION,
        ConditionVerdictRequest,
        LlmCall,
        LlmText,
        LlmVerdict,
        RouteChoice,
        RouteOptionBrief,
        RouteRequest,
        TokenUsage,
    )
    from kernel import errors
    from kernel.errors import ErrorType
    from kernel.metrics import count_step
    from kernel.redact import redact_url
    from workflows.instructions.conditions import ConditionSyntaxError, evaluate, parse
    from workflows.instructions.models import (
        ApprovalInstruction,
        Condition,
        ConditionInstruction,
        ConditionOutcome,
        EndpointInstruction,
        EndpointSpec,
        Instruction,
        InstructionEngineOptions,
        InstructionResume,
        InstructionRunInput,
        InstructionRunStatus,
        LlmInstruction,
        PlanState,
        RouterDecision,
        RouterInstruction,
        RunError,
        StepError,
        StepState,
        ThreadInstruction,
        ThreadOutcome,
        condition_of,
    )
    from workflows.instructions.plan import (
        InstructionPlan,
        StepBudgetExceeded,
        choose_router_option,
        endpoint_renderer,
        endpoint_result_text,
        llm_prompt,
        source_text,
    )
    from workflows.instructions.rerun import reuse_steps
    from workflows.instructions.threads import collect, deterministic_complete, format_thread
    from workflows.shared.approval_wait import await_decision, decision_outcome, waiting_data
    from workflows.shared.approvals import Approval, approval_result, refusal, wait_seconds
    from workflows.shared.deadline import HeldDeadline
    from workflows.shared.endpoints import (
        EndpointRequest,
        EndpointResponse,
        UnknownEndpoint,
        http_call,
        resolve_endpoint,
    )
    from workflows.shared.events import EventLog, EventPage, EventsQuery
    from workflows.shared.execution import execute_call, runs_local
    from workflows.shared.failures import (
        HEARTBEAT_TIMEOUT,
        UNHEALABLE,
        StepFailed,
        StepFailure,
        run_deadline,
        step_failed,
        step_retry_policy,
    )
    from workflows.shared.runs import InstructionRunState, StepStatus
    from workflows.shared.templating import TemplateError, secret_names
    from workflows.shared.usage_memo import record_usage

AnswerT = TypeVar("AnswerT", LlmText, LlmVerdict, RouteChoice)

#: What an LLM completion check asks when the thread names no expression.
DEFAULT_THREAD_CHECK = (
    "Every collected step produced a meaningful, non-empty answer, and together they complete "
    "the task."
)
#: Bounds LLM retry backoff: 3 retries from 1 s wait 1, 2 and 4 s.
LLM_RETRY_MAX_INTERVAL = timedelta(seconds=60)


def llm_retry_policy(engine: InstructionEngineOptions) -> RetryPolicy:
    """Exponential backoff for LLM calls; rejected requests and missing providers fail at once."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=engine.llm_retry_initial_seconds),
        backoff_coefficient=2.0,
        maximum_interval=LLM_RETRY_MAX_INTERVAL,
        maximum_attempts=engine.llm_max_retries + 1,
        non_retryable_error_types=errors.NON_RETRYABLE_TYPES,
    )


def endpoint_retry_policy(spec: EndpointSpec) -> RetryPolicy:
    """The instruction's `retries` and `retryDelay` (ms, doubling) as a Temporal retry policy."""
    # Temporal reads a zero interval as "use the default" (1 s); 1 ms is what 0 means here.
    return step_retry_policy(spec.retries, max(spec.retry_delay, 1) / 1000)


#: Reaching an external endpoint proxy: it retries the target itself.
PROXY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_attempts=3,
    non_retryable_error_types=errors.NON_RETRYABLE_TYPES,
)


#: Added to a proxied call's own budget for the round trip to the proxy itself.
PROXY_SLACK_SECONDS = 5.0


def step_error(exc: StepFailed) -> StepError:
    failure = exc.failure
    return StepError(type=failure.type, message=failure.message, attempts=failure.attempts)


@workflow.defn(failure_exception_types=UNHEALABLE)
class InstructionWorkflow:
    """Runs a list of instructions as a queue; see `workflows.instructions.plan` for the policy."""

    @workflow.init
    def __init__(self, run: InstructionRunInput) -> None:
        self._run = run
        #: The server suggested continuing as new: the queue stops after the current step.
        self._continuing = False
        #: Approval steps' decisions (`approval_result`), by index as text, once taken.
        self._decisions: dict[str, dict[str, Any]] = {}
        #: The run's deadline, when it has approval steps (their waits do not count).
        self._deadline: HeldDeadline | None = None
        if run.resume is not None:
            # Continued as new: the chain is one run to its users.
            self._status = run.resume.status
            self._results = dict(run.resume.results)
            self._started = run.resume.started_at or workflow.now()
            self._events = EventLog(run.resume.events, run.resume.sequence)
            self._held_seconds = run.resume.held_seconds
        else:
            self._status = InstructionRunStatus.for_input(run)
            #: index -> result of every step that completed.
            self._results = {}
            self._started = workflow.now()
            self._events = EventLog()
            self._held_seconds = 0.0
            if run.rerun is not None:
                self._results = reuse_steps(self._status, run.rerun, run.instructions)
        #: Steps by status, kept as they change (`_set_status`): an event's progress is read
        #: from it, never by a scan of every step.
        self._counts = Counter(state.status for state in self._status.steps)

    @workflow.query
    def get_status(self) -> InstructionRunStatus:
        """Every step's state, the execution order and the output so far."""
        return self._status

    @workflow.query
    def get_events(self, query: EventsQuery) -> EventPage:
        """The run's events after `query.after` (the live stream, `GET /runs/{id}/events`)."""
        return self._events.page(query)

    @workflow.update
    def approve(self, approval: Approval) -> dict[str, Any]:
        """A person's decision for a waiting approval step (`step_name`: its index); answers
        the step's result."""
        decided = approval_result(approval, workflow.now())
        self._decisions[approval.step_name] = decided
        return decided

    @approve.validator
    def _approvable(self, approval: Approval) -> None:
        """Refuse (409 `NotWaiting`, 422 `InvalidApprovalData`) before anything is recorded."""
        name = approval.step_name
        index = int(name) if name.isdecimal() else -1
        known = 0 <= index < len(self._run.instructions)
        instruction = self._run.instructions[index] if known else None
        refused = refusal(
            instruction if isinstance(instruction, ApprovalInstruction) else None,
            self._status.steps[index].status if instruction is not None else None,
            name in self._decisions,
            approval.data,
        )
        if refused is not None:
            raise errors.non_retryable(*refused)

    @workflow.update
    def pause(self) -> InstructionRunStatus:
        """Start no new step until `resume`; the running step finishes, approvals land.
        Answers the run's status: a query after it would wait for another workflow task
        while a local call holds the task open (`workflows.shared.control`)."""
        if self._status.status == "running":
            self._status.status = "paused"
            self._emit("workflow.paused")
        return self._status

    @workflow.update
    def resume(self) -> InstructionRunStatus:
        """Go on where the run stood; answers its status, as `pause` does."""
        if self._status.status == "paused":
            self._status.status = "running"
            self._emit("workflow.resumed")
        return self._status

    @workflow.run
    async def run(self, run: InstructionRunInput) -> InstructionRunStatus:
        status = self._status
        status.status = "running"
        if run.resume is None:
            self._emit("workflow.started", data={"total_steps": len(run.instructions)})
        plan = InstructionPlan(
            run.instructions,
            max_steps=run.engine.step_budget,
            state=self._plan_state(run),
        )
        queue = asyncio.create_task(self._run_queue(plan))
        deadline = self._start_deadline()
        try:
            if deadline is None:
                failure = await queue
            else:
                await workflow.wait([queue, deadline], return_when=asyncio.FIRST_COMPLETED)
                if queue.done():
                    deadline.cancel()
                    failure = queue.result()
                else:
                    failure = await self._time_out(queue, run.engine.run_timeout_seconds or 0)
        except asyncio.CancelledError:
            queue.cancel()
            self._finish("terminated")
            raise
        if failure is not None:
            status.error = failure
            self._finish("errored")
            # Failed in Temporal (Web UI, CLI), with the partial status in the details.
            where = f"instruction {failure.step}" if failure.step is not None else "the run"
            raise errors.run_failed(
                ErrorType.INSTRUCTION_FAILED,
                f"{where} failed: {failure.message}",
                status.model_dump(mode="json"),
            )
        if self._continuing:
            workflow.continue_as_new(
                run.model_copy(
                    update={
                        "resume": InstructionResume(
                            status=status,
                            results=self._results,
                            plan=plan.state(),
                            started_at=self._started,
                            sequence=self._events.sequence,
                            events=self._events.carry(),
                            held_seconds=(
                                self._deadline.held_seconds if self._deadline is not None else 0.0
                            ),
                        ),
                        # A rerun's reused steps are in the status now: not carried twice.
                        "rerun": None,
                    }
                )
            )
        self._finish("complete")
        return status

    @staticmethod
    def _plan_state(run: InstructionRunInput) -> PlanState | None:
        """Where the queue stands at the start: as the run before this one of the chain left
        it, as a rerun's source had it, or (None) at the first step."""
        if run.resume is not None:
            return run.resume.plan
        return run.rerun.plan if run.rerun is not None else None

    def _start_deadline(self) -> asyncio.Task[None] | None:
        """The run's deadline: one timer, or for a run with approval steps one that stops
        while they wait (`HeldDeadline`; no run recorded before it has such steps)."""
        run_timeout = self._run.engine.run_timeout_seconds
        if run_timeout is None or not any(
            isinstance(instruction, ApprovalInstruction) for instruction in self._run.instructions
        ):
            return run_deadline(run_timeout, self._started)
        self._deadline = HeldDeadline(run_timeout, self._started, self._held_seconds)
        return self._deadline.start()

    async def _run_queue(self, plan: InstructionPlan) -> RunError | None:
        """Run steps until the plan has none left, one fails (the failure is returned), or
        the server suggests continuing as new (`_continuing`)."""
        while not self._continuing:
            if self._status.status == "paused":
                # No command: runs never paused replay as they were recorded.
                await workflow.wait_condition(lambda: self._status.status != "paused")
            try:
                index = plan.next_step()
            except StepBudgetExceeded as exc:
                return RunError(
                    type=exc.error_type,
                    message=f"{exc} (INSTRUCTION_STEP_BUDGET)",
                    step=exc.next_index,
                )
            if index is None:
                return None
            failure = await self._run_step(plan, index)
            if failure is not None:
                return failure
            self._continuing = workflow.info().is_continue_as_new_suggested()
        return None

    async def _time_out(self, queue: asyncio.Task[RunError | None], seconds: float) -> RunError:
        """Stop the running step (its call is cancelled) and describe the timeout."""
        running = next((s.index for s in self._status.steps if s.status == "running"), None)
        message = f"the run exceeded its run timeout of {seconds:g}s"
        queue.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await queue
        if running is not None:
            state = self._status.steps[running]
            self._set_status(state, "failed")
            state.error = StepError(type=ErrorType.TIMED_OUT, message=message)
            state.finished_at = workflow.now()
            self._emit("step.failed", state, {"error": state.error.model_dump(mode="json")})
        return RunError(type=ErrorType.TIMED_OUT, message=message, step=running)

    # -- steps -------------------------------------------------------------------------

    async def _run_step(self, plan: InstructionPlan, index: int) -> RunError | None:
        instruction = self._run.instructions[index]
        state = self._status.steps[index]
        previous = source_text(plan.input_source(index), self._results, self._run.context)
        # Recorded before it runs: whatever happens, this step is never handed out again.
        plan.record_executed(index)
        self._status.execution_order.append(index)
        self._set_status(state, "running")
        state.started_at = workflow.now()
        self._emit("step.started", state)
        try:
            result = await self._execute(index, instruction, previous, state)
            self._results[index] = result
            state.result = result
            self._status.output = result
            condition = condition_of(instruction)
            if condition is not None:
                await self._branch(plan, index, condition, state)
        except StepFailed as exc:
            self._set_status(state, "failed")
            state.error = step_error(exc)
            state.finished_at = workflow.now()
            self._emit("step.failed", state, {"error": state.error.model_dump(mode="json")})
            count_step("instructions", "failed")
            return RunError(type=state.error.type, message=state.error.message, step=index)
        self._set_status(state, "completed")
        state.finished_at = workflow.now()
        spent = {"usage": state.usage.model_dump(mode="json")} if state.usage.total_tokens else {}
        self._emit("step.completed", state, {"result": state.result, **spent})
        count_step("instructions", "completed")
        return None

    async def _execute(
        self, index: int, instruction: Instruction, previous: str, state: StepState
    ) -> str:
        label = f"instruction {index}"
        if isinstance(instruction, LlmInstruction):
            return await self._call_llm(instruction.instruction, previous, label, state)
        if isinstance(instruction, ConditionInstruction):
            # A condition step only branches; the next step sees the same text it would have.
            return previous
        if isinstance(instruction, EndpointInstruction):
            return await self._call_endpoint(instruction, previous, label)
        if isinstance(instruction, ThreadInstruction):
            return await self._thread(instruction, label, state)
        if isinstance(instruction, RouterInstruction):
            return await self._route(instruction, previous, label, state)
        if isinstance(instruction, ApprovalInstruction):
            return await self._await_approval(instruction, previous, label, state)
        raise StepFailed.of(ErrorType.INVALID_INSTRUCTION, f"{label}: unknown instruction type")

    async def _await_approval(
        self, approval: ApprovalInstruction, previous: str, label: str, state: StepState
    ) -> str:
        """Wait (status `waiting`, event `step.waiting`) for the `approve` update or the
        step's timeout; approved, the decision as JSON is the step's result."""
        renderer = endpoint_renderer(
            previous, self._run.context, self._run.engine.max_request_chars
        )
        try:
            message = str(renderer.render(approval.message))
        except TemplateError as exc:
            raise StepFailed.of(exc.error_type, f"{label}: {exc}") from exc
        seconds = wait_seconds(approval, self._run.engine.wait_timeout_seconds)
        self._set_status(state, "waiting")
        self._emit("step.waiting", state, waiting_data(message, seconds, approval))
        decision, timed_out = await await_decision(
            self._decisions, str(state.index), approval, seconds, self._deadline
        )
        decided = decision_outcome(approval, decision, timed_out=timed_out, label=label)
        self._set_status(state, "running")
        return json.dumps(decided, ensure_ascii=False)

    async def _ask_llm(
        self,
        activity: str,
        request: BaseModel,
        result_type: type[AnswerT],
        *,
        timeout_seconds: float,
        label: str,
        summary: str,
        state: StepState,
    ) -> AnswerT:
        """One LLM activity under the run's retry policy; its tokens are added to the step,
        and the run fails once they pass its token budget."""
        self._check_token_budget(label)
        policy = llm_retry_policy(self._run.engine)
        try:
            answer: AnswerT = await workflow.execute_activity(
                activity,
                request,
                result_type=result_type,
                start_to_close_timeout=timedelta(seconds=timeout_seconds),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=policy,
                summary=summary,
            )
        except ActivityError as exc:
            raise step_failed(exc, policy.maximum_attempts, label) from exc
        self._add_usage(state, answer.usage)
        self._check_token_budget(label)
        return answer

    def _check_token_budget(self, label: str) -> None:
        budget = self._run.engine.token_budget
        spent = self._status.usage.total_tokens
        if budget is not None and spent > budget:
            raise StepFailed.of(
                ErrorType.TOKEN_BUDGET_EXCEEDED,
                f"{label}: the run has spent {spent} tokens, more than its budget of {budget}"
                " (LLM_TOKEN_BUDGET_PER_RUN)",
            )
        cost_budget, cost = self._run.engine.cost_budget_usd, self._status.usage.cost_usd
        if cost_budget is not None and cost is not None and cost > cost_budget:
            raise StepFailed.of(
                ErrorType.BUDGET_EXCEEDED,
                f"{label}: the run has spent {cost:.6f} USD, more than the {cost_budget:g} USD"
                " its parent run's budget left it",
            )

    async def _call_llm(self, instruction: str, previous: str, label: str, state: StepState) -> str:
        run = self._run
        answer = await self._ask_llm(
            CALL_LLM,
            LlmCall(
                provider=run.provider,
                model=run.effective_model,
                prompt=llm_prompt(instruction, previous),
                label=label,
                tenant=run.engine.tenant,
            ),
            LlmText,
            timeout_seconds=run.engine.llm_step_timeout_seconds,
            label=label,
            summary=f"{label}: LLM",
            state=state,
        )
        state.model, state.fallback = answer.model, answer.fallback
        return answer.text

    async def _judge(
        self, expression: str, subject: str, label: str, state: StepState
    ) -> LlmVerdict:
        run = self._run
        return await self._ask_llm(
            JUDGE_CONDITION,
            ConditionVerdictRequest(
                provider=run.provider,
                model=run.effective_model,
                expression=expression,
                result_text=subject,
                label=label,
                tenant=run.engine.tenant,
            ),
            LlmVerdict,
            timeout_seconds=run.engine.llm_condition_timeout_seconds,
            label=label,
            summary=f"{label}: judge",
            state=state,
        )

    async def _call_endpoint(self, spec: EndpointSpec, previous: str, label: str) -> str:
        """One HTTP call for an endpoint step or a router's option; the body as text.

        `spec.endpoint_url` picks the endpoint worker (task queue) that makes the call, or an
        external proxy that speaks the seed's endpoint-worker format; none: this worker.
        """
        context = self._run.context
        secrets = secret_names(spec.api_url, spec.headers, spec.body)
        renderer = endpoint_renderer(
            previous, context, self._run.engine.max_request_chars, secret_names=secrets
        )
        try:
            headers = renderer.render(spec.headers)
            body = renderer.render(spec.body)
        except TemplateError as exc:
            raise StepFailed.of(exc.error_type, f"{label}: {exc}") from exc
        if spec.idempotency_key:
            run_id = workflow.info().first_execution_run_id
            headers = with_idempotency_key(headers, idempotency_key(run_id, label))
        try:
            route = resolve_endpoint(spec.endpoint_url, self._run.engine.endpoint_workers)
        except UnknownEndpoint as exc:
            raise StepFailed.of(exc.error_type, f"{label}: {exc}") from exc
        if route.proxy_url is not None:
            return await self._call_proxy(route.proxy_url, spec, headers, body, label)
        engine = self._run.engine
        local = runs_local(
            engine.execution_mode,
            timeout_seconds=spec.timeout / 1000,
            max_retries=spec.retries,
            retry_delay=max(spec.retry_delay, 1) / 1000,
            routed=route.task_queue is not None,
            local_max_seconds=engine.local_max_seconds,
        )
        # The body is sent when the instruction has one (rendering keeps None as None).
        result = await execute_call(
            http_call(
                spec.method,
                spec.api_url,
                headers,
                body,
                spec.timeout,
                label=label,
                secret_names=secrets,
                tenant=self._run.engine.tenant,
            ),
            placement="local" if local else "activity",
            max_attempts=spec.retries + 1,
            retry_policy=endpoint_retry_policy(spec),
            task_queue=route.task_queue or workflow.info().task_queue,
            summary=f"{label}: {spec.method} {redact_url(spec.api_url)}"[:200],
        )
        return endpoint_result_text(result.body, result.is_json)

    async def _call_proxy(
        self, proxy_url: str, spec: EndpointSpec, headers: Any, body: Any, label: str
    ) -> str:
        """Send the seed's request format to an external endpoint worker and read its answer.

        The proxy retries the target itself (`retries`, `retryDelay`), so this call retries
        only reaching the proxy, and its timeout covers all of the proxy's attempts.
        """
        try:
            request = EndpointRequest(
                url=spec.api_url,
                method=spec.method,
                headers=headers,
                body=body,
                retries=spec.retries,
                retryDelay=max(spec.retry_delay, 1),
                timeout=spec.timeout,
            )
        except ValidationError as exc:
            # The seed format caps `timeout` and `retryDelay` at an hour and an instruction does
            # not; raised here, the error would fail the workflow task, retried forever.
            raise StepFailed.of(
                ErrorType.INVALID_REQUEST,
                f"{label}: cannot send this call to {proxy_url}: "
                + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()),
            ) from exc
        budget = request.budget_seconds() + PROXY_SLACK_SECONDS
        try:
            result = await workflow.execute_activity(
                CALL_HTTP,
                http_call(
                    "POST",
                    proxy_url,
                    {},
                    request.model_dump(mode="json", by_alias=True),
                    int(budget * 1000),
                    label=f"{label} via {proxy_url}",
                ),
                result_type=HttpResult,
                start_to_close_timeout=timedelta(seconds=budget),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=PROXY_RETRY,
                summary=f"{label}: {spec.method} {redact_url(spec.api_url)} via proxy"[:200],
            )
        except ActivityError as exc:
            raise step_failed(exc, PROXY_RETRY.maximum_attempts, label) from exc
        try:
            answer = EndpointResponse.model_validate(result.body)
        except ValidationError as exc:
            raise StepFailed.of(
                ErrorType.PROXY_RESPONSE_INVALID,
                f"{label}: {proxy_url} did not answer in the endpoint-worker format",
            ) from exc
        if not answer.success:
            raise StepFailed(
                StepFailure(
                    type=ErrorType.ENDPOINT_FAILED,
                    message=f"{label}: {proxy_url} reported status {answer.status}:"
                    f" {answer.error or answer.status_text}",
                    attempts=answer.attempts,
                )
            )
        return endpoint_result_text(answer.body, not isinstance(answer.body, str))

    async def _thread(self, thread: ThreadInstruction, label: str, state: StepState) -> str:
        items = collect(self._results, thread.collect_from_steps)
        text = format_thread(items, thread.output_format)
        check = thread.completion_check
        if check is not None and check.mode == "llm":
            verdict = await self._judge(
                check.expression or DEFAULT_THREAD_CHECK, text, label, state
            )
            complete = verdict.verdict
        else:
            try:
                complete = deterministic_complete(
                    items, check.expression if check else None, thread.output_format
                )
            except ConditionSyntaxError as exc:
                raise StepFailed.of(exc.error_type, f"{label}: completionCheck: {exc}") from exc
        state.thread = ThreadOutcome(complete=complete)
        return text

    async def _route(
        self, router: RouterInstruction, previous: str, label: str, state: StepState
    ) -> str:
        run = self._run
        answer: str | None = None
        try:
            choice = await self._ask_llm(
                CHOOSE_ROUTE,
                RouteRequest(
                    provider=run.provider,
                    model=run.effective_model,
                    description=router.description,
                    evaluation_prompt=router.evaluation_prompt,
                    previous_result=previous,
                    options=[
                        RouteOptionBrief(
                            id=option.id, name=option.name, description=option.description
                        )
                        for option in router.options
                    ],
                    label=label,
                    tenant=run.engine.tenant,
                ),
                RouteChoice,
                timeout_seconds=run.engine.llm_condition_timeout_seconds,
                label=label,
                summary=f"{label}: route",
                state=state,
            )
        except StepFailed as exc:
            if exc.failure.type == ErrorType.PROVIDER_NOT_CONFIGURED:
                # A configuration mistake, not an answer: falling back would hide it.
                raise
            reason: str | None = (
                f"the model gave no answer ({exc.failure.type}: {exc.failure.message})"
            )
        else:
            answer = choice.option_id if choice.valid else None
            reason = choice.reason or (
                None if choice.valid else f"the answer names no option: {choice.raw[:200]!r}"
            )
        option, fallback = choose_router_option(router, answer)
        state.router = RouterDecision(chosen=option.id, fallback_used=fallback, reason=reason)
        return await self._call_endpoint(option.endpoint, previous, f"{label} ({option.id})")

    async def _branch(
        self, plan: InstructionPlan, index: int, condition: Condition, state: StepState
    ) -> None:
        source = plan.condition_source(index)
        subject = source_text(source, self._results, self._run.context)
        # Decided when the run was submitted (`Condition._decide_mode`), never on replay.
        mode = condition.mode or "llm"
        reason: str | None = None
        if mode == "deterministic":
            try:
                verdict = evaluate(parse(condition.expression), subject)
            except ConditionSyntaxError as exc:
                raise StepFailed.of(exc.error_type, f"instruction {index}: {exc}") from exc
        else:
            answer = await self._judge(
                condition.expression, subject, f"instruction {index} condition", state
            )
            verdict, reason = answer.verdict, answer.reason
        next_steps = plan.on_condition(verdict, condition.if_true, condition.if_false)
        state.condition = ConditionOutcome(
            mode=mode,
            verdict=verdict,
            reason=reason,
            evaluated_step=source,
            next_steps=next_steps,
        )

    # -- status ------------------------------------------------------------------------

    def _add_usage(self, state: StepState, usage: TokenUsage) -> None:
        state.usage = state.usage + usage
        self._status.usage = self._status.usage + usage

    def _finish(self, outcome: InstructionRunState) -> None:
        status = self._status
        status.status = outcome
        now = workflow.now()
        for state in status.steps:
            if state.status in ("running", "waiting"):
                self._set_status(state, "failed")
                state.error = StepError(type=ErrorType.CANCELLED, message="the run was cancelled")
                state.finished_at = now
            elif state.status == "pending":
                self._set_status(state, "skipped")
        usage = status.usage
        record_usage(usage.input_tokens, usage.output_tokens, usage.cost_usd, usage.unpriced_models)
        if outcome == "complete":
            self._emit("workflow.completed", data={"output": status.output})
        elif outcome == "errored":
            error = status.error.model_dump(mode="json") if status.error else None
            self._emit("workflow.failed", data={"error": error})
        else:
            self._emit("workflow.cancelled", data={"output": status.output})

    def _set_status(self, state: StepState, status: StepStatus) -> None:
        self._counts[state.status] -= 1
        self._counts[status] += 1
        state.status = status

    def _emit(self, event: str, step: StepState | None = None, data: Any = None) -> None:
        """Log an event in the DAG runs' webhook model (its memory only, no command)."""
        info = workflow.info()
        sequence = self._events.next_sequence()
        counts = {name: self._counts[name] for name in ("completed", "failed", "skipped")}
        payload: dict[str, Any] = {
            "event": event,
            "event_id": f"{info.first_execution_run_id}:{sequence}",
            "sequence": sequence,
            # The gateway names instruction runs `instr-<uuid>`, after a tenant's `<tenant>/`.
            "workflow_id": info.workflow_id.rpartition("/")[2],
            "run_id": info.run_id,
            "timestamp": workflow.now().isoformat(),
            "progress": {**counts, "total": len(self._status.steps)},
            "data": data,
        }
        if step is not None:
            payload["step_name"] = str(step.index)
            payload["index"] = step.index
            payload["type"] = step.type
        self._events.append(payload)
