"""Where a DAG run's HTTP calls run, from the pipeline and the options stamped on the run:
each step's timeout and retries, whether its call is a local activity, and whether the run
may run any local work at all. Pure logic, shared by the workflow (which places each call)
and the gateway (which starts a run that may run local work with a short workflow task
timeout, `workflows.shared.control`).
"""

from __future__ import annotations

from workflows.dag.models import DagRunInput, StepConfig
from workflows.shared.endpoints import resolve_endpoint
from workflows.shared.execution import runs_local


def step_timeout(run: DagRunInput, step: StepConfig) -> float:
    """One attempt's timeout: the step's own, else the pipeline's `step_timeout`."""
    return step.timeout or run.PIPELINE_SETTINGS.timeouts.step_timeout


def step_retries(run: DagRunInput, step: StepConfig) -> tuple[int, float]:
    """The step's `max_retries` and `retry_delay`: its own, else the pipeline's."""
    handling = run.PIPELINE_SETTINGS.error_handling
    max_retries = step.max_retries if step.max_retries is not None else handling.max_retries
    return max_retries, step.retry_delay or handling.retry_delay


def call_runs_local(run: DagRunInput, step: StepConfig, *, routed: bool) -> bool:
    """Whether the step's HTTP call is a local activity in the run's mode (`runs_local`)."""
    max_retries, retry_delay = step_retries(run, step)
    return runs_local(
        run.engine.execution_mode,
        timeout_seconds=step_timeout(run, step),
        max_retries=max_retries,
        retry_delay=retry_delay,
        routed=routed,
        local_max_seconds=run.engine.local_max_seconds,
    )


def may_run_local(run: DagRunInput) -> bool:
    """Whether any step's call of a valid run is a local activity: an `instructions` step's
    child run places its own calls; `llm` steps are always regular activities."""
    workers = run.engine.endpoint_workers
    return any(
        step.type == "http"
        and call_runs_local(
            run, step, routed=resolve_endpoint(step.endpoint, workers).task_queue is not None
        )
        for step in run.STEPS_CONFIG
    )
