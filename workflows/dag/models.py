"""The DAG pipeline payload (the seed's `/execute` contract) and the run result.

These models validate what users POST to the gateway and are also the workflow's input and
output, carried by `pydantic_data_converter`. New fields always get defaults so that
histories recorded before them still decode.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from activities.limits import shallow_json
from workflows.shared.execution import LOCAL_MAX_SECONDS, ExecutionMode
from workflows.shared.runs import DagRunState, StepStatus
from workflows.shared.webhooks import WebhookDeliveries

#: Steps one pipeline may hold; long runs continue as new, so history stays bounded.
MAX_STEPS = 10_000

#: The longest `run_timeout` a pipeline may ask for.
MAX_RUN_TIMEOUT_SECONDS = 7 * 24 * 3600

#: Any JSON value a user sends, nested no deeper than `limits.MAX_JSON_DEPTH`.
ShallowJson = Annotated[Any, AfterValidator(shallow_json)]

#: Methods that carry the default body when a step has no `input_prep_config.body`. An
#: explicit body is sent with any method but GET.
DEFAULT_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class InputPrepConfig(BaseModel):
    """How a step builds its request. Every string inside is a `{{…}}` template."""

    model_config = ConfigDict(extra="allow")

    body: ShallowJson = None
    query: Annotated[dict[str, Any], AfterValidator(shallow_json)] = Field(default_factory=dict)
    headers: Annotated[dict[str, Any], AfterValidator(shallow_json)] = Field(default_factory=dict)

    @property
    def has_body(self) -> bool:
        return "body" in self.model_fields_set


class StepConfig(BaseModel):
    step_name: str = Field(min_length=1, max_length=200)
    usid: str = Field(min_length=1, max_length=200)
    service_url: str = Field(min_length=1)
    method: str = "POST"
    dependencies: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    headers: Annotated[dict[str, Any], AfterValidator(shallow_json)] = Field(default_factory=dict)
    input_prep_config: InputPrepConfig | None = None
    # Per-step overrides of PIPELINE_SETTINGS.
    max_retries: int | None = Field(default=None, ge=0, le=50)
    retry_delay: float | None = Field(default=None, gt=0, le=3600)
    timeout: float | None = Field(default=None, gt=0, le=24 * 3600)
    #: Endpoint worker (task queue name) that makes this step's call; default worker if unset.
    endpoint: str | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class ErrorHandling(BaseModel):
    max_retries: int = Field(default=2, ge=0, le=50)
    retry_delay: float = Field(default=3.0, gt=0, le=3600)
    #: Send each step's calls with an `Idempotency-Key` that every retry repeats.
    idempotency_keys: bool = True


class Timeouts(BaseModel):
    step_timeout: float = Field(default=45.0, gt=0, le=24 * 3600)
    #: The whole run's deadline: past it, running steps are cancelled and the run fails
    #: (`TimedOut`) with every finished step's result. At most a week.
    run_timeout: float | None = Field(default=6 * 3600, gt=0, le=MAX_RUN_TIMEOUT_SECONDS)


class Notifications(BaseModel):
    webhook_url: str | None = None


class Concurrency(BaseModel):
    max_parallel: int | None = Field(default=None, ge=1, le=1000)


class Execution(BaseModel):
    #: How steps run (`workflows.shared.execution`); None: the operator's EXECUTION_MODE.
    mode: ExecutionMode | None = None


class PipelineSettings(BaseModel):
    error_handling: ErrorHandling = Field(default_factory=ErrorHandling)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    notifications: Notifications = Field(default_factory=Notifications)
    concurrency: Concurrency = Field(default_factory=Concurrency)
    execution: Execution = Field(default_factory=Execution)


class EngineOptions(BaseModel):
    """Operator settings the gateway stamps on each run (never taken from the user)."""

    output_ttl_seconds: int = 7 * 24 * 3600
    webhook_attempt_timeout_seconds: float = 10.0
    #: Runs recorded before webhook outboxes only: the budget of one event's delivery.
    webhook_delivery_timeout_seconds: float = 120.0
    #: Each event is retried until this long after it was emitted (`WebhookOutboxWorkflow`).
    webhook_delivery_window_seconds: float = 6 * 3600
    webhook_retry_max_interval_seconds: float = 300.0
    task_queue: str = "workflow-station"
    #: Configured endpoint worker names; a step's `endpoint` must be one of them.
    endpoint_workers: list[str] = Field(default_factory=list)
    #: The gateway validated the pipeline at submission; the workflow does not re-decide it.
    validated: bool = False
    #: The largest request a step may render (URL, headers, query and body, as JSON text).
    max_request_chars: int = 1_000_000
    #: Steps running at once when the pipeline sets no `max_parallel` (and its ceiling when
    #: it does): Temporal allows 2,000 pending activities per run.
    max_steps_in_flight: int = 100
    #: The tenant whose run this is, prefixing its Redis keys (None: the open gateway).
    tenant: str | None = None
    #: Step results and outputs larger than this (as JSON) appear in the run's status, result
    #: and webhook events as references (`workflows.dag.references`), not inline.
    value_inline_max_bytes: int = 64 * 1024
    #: How long a step keeps retrying an unreachable Redis (selection reads, output writes)
    #: before it fails: an outage shorter than this only delays the run.
    store_retry_window_seconds: float = 300.0
    #: The run's execution mode, resolved at submission (the pipeline's, else the operator's
    #: default). Durable for inputs recorded before modes existed, so they replay unchanged.
    execution_mode: ExecutionMode = "durable"
    #: The bound on a local activity's attempt and retry waits (`execution.runs_local`).
    local_max_seconds: float = LOCAL_MAX_SECONDS


class PipelineRequest(BaseModel):
    """The seed payload for `POST /execute`."""

    workflow_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:@/-]+$")
    namespace: str = Field(default="default", min_length=1, max_length=200)
    original_input: ShallowJson = None
    input_data: Annotated[dict[str, Any], AfterValidator(shallow_json)] = Field(
        default_factory=dict
    )
    STEPS_CONFIG: list[StepConfig] = Field(min_length=1, max_length=MAX_STEPS)
    PIPELINE_SETTINGS: PipelineSettings = Field(default_factory=PipelineSettings)


class DagRunInput(PipelineRequest):
    """The workflow's input: the request plus the operator's `EngineOptions`, and for a run
    that continued as new, what the run before it had done."""

    engine: EngineOptions = Field(default_factory=EngineOptions)
    resume: DagResume | None = None


class StepError(BaseModel):
    type: str
    message: str
    http_status: int | None = None
    attempts: int = 0


class StepState(BaseModel):
    step_name: str
    usid: str
    status: StepStatus = "pending"
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    http_status: int | None = None
    result: Any = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: StepError | None = None
    abort_reason: str | None = None
    #: While a step is being retried: why its last attempt failed (from Temporal).
    last_failure: str | None = None
    next_attempt_at: datetime | None = None


class Progress(BaseModel):
    completed: int = 0
    failed: int = 0
    aborted: int = 0
    cancelled: int = 0
    running: int = 0
    total: int = 0


class RunError(BaseModel):
    step_name: str | None = None
    usid: str | None = None
    type: str
    message: str
    http_status: int | None = None
    attempts: int = 0


class DagRunResult(BaseModel):
    """A run as the gateway returns it: live from the query or final from the result."""

    workflow_id: str
    run_id: str | None = None
    namespace: str = "default"
    status: DagRunState = "running"
    steps: dict[str, StepState] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: RunError | None = None
    progress: Progress = Field(default_factory=Progress)
    started_at: datetime | None = None
    execution_time_ms: int | None = None
    webhooks: WebhookDeliveries = Field(default_factory=WebhookDeliveries)


class DagResume(BaseModel):
    """What a run hands to the next run of its chain when it continues as new: every step's
    state so far and the values later steps may reference."""

    result: DagRunResult
    variables: dict[str, Any] = Field(default_factory=dict)
    #: The last event's sequence number, so numbering goes on across the chain.
    sequence: int = 0
    #: The newest events, so a client following the run live misses none at the hand-over
    #: (`workflows.shared.events`).
    events: list[dict[str, Any]] = Field(default_factory=list)
    webhook_degraded: bool = False
