"""The engine's metrics: one definition of each name, recorded through Temporal's meters.

Everything is recorded through `workflow.metric_meter()` (in workflow code, which skips
recording while a history replays, so a replayed run counts nothing twice) or
`activity.metric_meter()`. Both feed the worker's one Prometheus endpoint (the SDK's,
`WORKER_METRICS_ADDRESS`), next to the SDK's own `temporal_*` metrics, and both add the
`namespace`, `task_queue` and `workflow_type` (or `activity_type`) labels themselves.

This module imports nothing but temporalio, so workflow code may use it (inside
`imports_passed_through`); setting telemetry up is `kernel.telemetry`'s job.

    workflow_station_runs_total{workflow_type, outcome}      a run's end (EngineTelemetry)
    workflow_station_steps_total{engine, outcome}            a step's end, retries included
    workflow_station_activity_attempts_total{activity_type, outcome, error_type}
    workflow_station_activity_duration_seconds{activity_type, outcome}   (histogram)
    workflow_station_activity_retries_total{activity_type}   attempts after the first
    workflow_station_outbound_refusals_total{activity_type}  OutboundBlocked failures
    workflow_station_llm_tokens_total{provider, model, kind} kind: input or output
    workflow_station_llm_ladder_rungs_total{rung, outcome}   structured-output ladder rungs
                                                             taken; outcome: valid or invalid
    workflow_station_llm_fallbacks_total{provider, model, reason}   models a call moved off
    workflow_station_llm_cost_nanodollars_total{tenant, provider, model}   priced calls' cost
    workflow_station_webhook_events_queued_total             handed to an outbox
    workflow_station_webhook_deliveries_total{outcome}       delivered or failed for good
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from temporalio import activity, client, workflow
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

RUNS = "workflow_station_runs"
STEPS = "workflow_station_steps"
ACTIVITY_ATTEMPTS = "workflow_station_activity_attempts"
ACTIVITY_DURATION = "workflow_station_activity_duration_seconds"
ACTIVITY_RETRIES = "workflow_station_activity_retries"
OUTBOUND_REFUSALS = "workflow_station_outbound_refusals"
LLM_TOKENS = "workflow_station_llm_tokens"
LLM_LADDER_RUNGS = "workflow_station_llm_ladder_rungs"
LLM_FALLBACKS = "workflow_station_llm_fallbacks"
LLM_COST = "workflow_station_llm_cost_nanodollars"
WEBHOOK_EVENTS_QUEUED = "workflow_station_webhook_events_queued"
WEBHOOK_DELIVERIES = "workflow_station_webhook_deliveries"

#: Buckets of the activity duration histogram, in seconds: an HTTP step takes milliseconds
#: to a minute, an LLM call seconds to minutes.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

#: The error type outbound refusals fail with (`kernel.errors.ErrorType.OUTBOUND_BLOCKED`).
_OUTBOUND_BLOCKED = "OutboundBlocked"


def count_step(engine: str, outcome: str) -> None:
    """A step of `engine` ended (`completed`, `failed`, `aborted`, `cancelled`). Workflow code."""
    workflow.metric_meter().create_counter(STEPS, "Steps ended, by engine and outcome.").add(
        1, {"engine": engine, "outcome": outcome}
    )


def count_webhook_events_queued(count: int) -> None:
    """`count` webhook events were queued in an outbox (emitted or redelivered). Workflow
    code. The backlog is this less the deliveries."""
    if count > 0:
        workflow.metric_meter().create_counter(
            WEBHOOK_EVENTS_QUEUED, "Webhook events queued for delivery."
        ).add(count)


def count_webhook_delivery(outcome: str) -> None:
    """A webhook event was settled: `delivered`, or `failed` for good. Workflow code."""
    workflow.metric_meter().create_counter(
        WEBHOOK_DELIVERIES, "Webhook events settled, by outcome."
    ).add(1, {"outcome": outcome})


def count_llm_tokens(provider: str, model: str, input_tokens: int, output_tokens: int) -> None:
    """Tokens one LLM call spent. Activity code."""
    counter = activity.metric_meter().create_counter(
        LLM_TOKENS, "LLM tokens spent, by provider, model and kind."
    )
    counter.add(input_tokens, {"provider": provider, "model": model, "kind": "input"})
    counter.add(output_tokens, {"provider": provider, "model": model, "kind": "output"})


def count_ladder_rung(rung: str, *, valid: bool) -> None:
    """A rung of the structured-output ladder was taken (`native`, `repaired`, `reprompt`),
    and gave a valid answer or not. Activity code."""
    activity.metric_meter().create_counter(
        LLM_LADDER_RUNGS, "Structured-output ladder rungs taken, by rung and outcome."
    ).add(1, {"rung": rung, "outcome": "valid" if valid else "invalid"})


def count_llm_fallback(provider: str, model: str, reason: str) -> None:
    """A call moved off this model to the next of its fallback chain. Activity code."""
    activity.metric_meter().create_counter(
        LLM_FALLBACKS, "LLM calls moved to a fallback model, by the model left and why."
    ).add(1, {"provider": provider, "model": model, "reason": reason})


def count_llm_cost(tenant: str, provider: str, model: str, cost_usd: float) -> None:
    """What one priced LLM call cost. Activity code. Counted in billionths of a dollar:
    Temporal's counters add integers, and a call to a small model costs well under a cent."""
    activity.metric_meter().create_counter(
        LLM_COST, "LLM spend in USD / 1e9, by tenant, provider and model."
    ).add(round(cost_usd * 1e9), {"tenant": tenant, "provider": provider, "model": model})


class EngineTelemetry(client.Interceptor, Interceptor):
    """Counts and logs every run's end and every activity attempt, without a line in the
    workflows or the activities: a worker interceptor, set on the worker's client (which
    passes it on to the workers).

    The log lines go through `activity.logger` and `workflow.logger` (which is silent while a
    history replays), so they carry the workflow id, run id, activity and attempt."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityMetrics(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _WorkflowMetrics


class _ActivityMetrics(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        meter = activity.metric_meter()
        info = activity.info()
        attempt = info.attempt
        if attempt > 1:
            meter.create_counter(ACTIVITY_RETRIES, "Activity attempts after the first.").add(1)
        started = time.monotonic()
        outcome, error_type = "completed", ""
        try:
            return await super().execute_activity(input)
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except BaseException as exc:
            outcome = "failed"
            error_type = (exc.type or "") if isinstance(exc, ApplicationError) else "Exception"
            if error_type == _OUTBOUND_BLOCKED:
                meter.create_counter(OUTBOUND_REFUSALS, "Calls the outbound guard refused.").add(1)
            raise
        finally:
            elapsed = time.monotonic() - started
            activity.logger.info(
                "%s attempt %d %s in %.3fs", info.activity_type, attempt, outcome, elapsed
            )
            meter.create_counter(
                ACTIVITY_ATTEMPTS, "Activity attempts, by outcome and error type."
            ).add(1, {"outcome": outcome, "error_type": error_type})
            meter.create_histogram_float(
                ACTIVITY_DURATION, "Duration of activity attempts.", "s"
            ).record(elapsed, {"outcome": outcome})


class _WorkflowMetrics(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        outcome = None
        try:
            result = await super().execute_workflow(input)
            outcome = "completed"
            return result
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except workflow.ContinueAsNewError:
            outcome = "continued_as_new"
            raise
        except FailureError:
            outcome = "failed"
            raise
        finally:
            # Any other exception fails the workflow task, which Temporal retries: not an end.
            if outcome is not None:
                workflow.logger.info("run %s", outcome)
                workflow.metric_meter().create_counter(
                    RUNS, "Runs ended, by workflow type and outcome."
                ).add(1, {"outcome": outcome})
