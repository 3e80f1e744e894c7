"""The DAG pipeline payload (the seed's `/execute` contract) and the run result.

These models validate what users POST to the gateway and are also the workflow's input and
output, carried by `pydantic_data_converter`. New fields always get defaults so that
histories recorded before them still decode.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator

from activities.llm.models import FallbackHop, LlmMessage, LlmProvider, ModelRef
from activities.pricing.models import ModelPrice, ModelSpend, add_by_model, add_costs, add_unpriced
from activities.store.models import is_internal_key_root
from kernel.limits import shallow_json
from workflows.dag.budget import Budget
from workflows.dag.mapping import ItemError, MapCarry, MapCounts, MapOptions
from workflows.shared.approvals import MAX_WAIT_SECONDS, ApprovalStep
from workflows.shared.execution import LOCAL_MAX_SECONDS, ExecutionMode
from workflows.shared.payloads import StrictPayload, known_fields_only
from workflows.shared.runs import DagRunState, ReuseSummary, StepStatus
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


class InputPrepConfig(StrictPayload):
    """How a step builds its request. Every string inside is a `{{…}}` template."""

    body: ShallowJson = Field(
        default=None,
        description=(
            "The request body, any JSON value; every string in it is a template. An explicit"
            " body is sent with any method but GET. Without one, POST, PUT and PATCH send"
            ' `{"original_input", "input_data", "dependencies": {name: result}}`.'
        ),
        examples=[{"text": "{{original_input}}"}],
    )
    query: Annotated[dict[str, Any], AfterValidator(shallow_json)] = Field(
        default_factory=dict,
        description="Query parameters added to `service_url`; values are templates.",
        examples=[{"lang": "{{input_data.lang}}"}],
    )
    headers: Annotated[dict[str, Any], AfterValidator(shallow_json)] = Field(
        default_factory=dict,
        description="Headers of the request, over the step's own `headers`; values are templates.",
    )

    @model_validator(mode="after")
    def _shallow_extras(self) -> InputPrepConfig:
        """Keys beyond body, query and headers are kept (seed payloads carry them) and travel
        in the run's input, so they are bounded like every other user value."""
        for value in (self.model_extra or {}).values():
            shallow_json(value)
        return self

    @property
    def has_body(self) -> bool:
        return "body" in self.model_fields_set


#: What a step does: an HTTP call (the seed's steps), one LLM call, a child instruction run, or
#: a wait for a person's approval.
StepType = Literal["http", "llm", "instructions", "approval"]


class LlmStepMessage(LlmMessage, StrictPayload):
    """One turn of an `llm` step's conversation: the LLM activity's message, strict as every
    part of a pipeline is."""


class LlmStepModelRef(ModelRef, StrictPayload):
    """A model an `llm` step may fall back to: the LLM activity's, strict as every part of a
    pipeline is."""


class LlmStep(StrictPayload):
    """An `llm` step's call: one prompt (or conversation) to one model. Every string but
    `output_schema` is a template."""

    provider: LlmProvider = Field(description="`openai` or `anthropic`.", examples=["openai"])
    model: str = Field(
        min_length=1, description="The model, as the provider names it.", examples=["gpt-5-nano"]
    )
    system: str | None = Field(default=None, description="The system prompt.")
    prompt: str | None = Field(
        default=None,
        description="The one user message; give it or `messages`.",
        examples=["Classify these items: {{items}}"],
    )
    messages: list[LlmStepMessage] | None = Field(
        default=None,
        min_length=1,
        description="The whole conversation (`role`: system, user or assistant), for `prompt`.",
    )
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="What the answer may spend; unset: the worker's `LLM_MAX_TOKENS`.",
    )
    temperature: float | None = Field(
        default=None, ge=0, le=2, description="Sampling temperature; unset: the provider's."
    )
    output_schema: Annotated[dict[str, Any], AfterValidator(shallow_json)] | None = Field(
        default=None,
        description=(
            "A JSON Schema the answer must follow: asked for as structured output, validated,"
            " and given as the result's `json`; an answer that does not validate fails the"
            " step (`InvalidModelOutput`)."
        ),
        examples=[{"type": "object", "properties": {"label": {"type": "string"}}}],
    )
    fallback: list[LlmStepModelRef] | Literal[False] | None = Field(
        default=None,
        description=(
            "The models to move to, in order, when this one is unavailable (429 past its wait,"
            " 5xx, 529, timeouts, connection errors; never on a bad answer); `false`: none;"
            " unset: the worker's `LLM_FALLBACK_CHAIN`. A budget's `downgrade` picks the"
            " cheapest of the step's model and these."
        ),
        examples=[[{"provider": "anthropic", "model": "claude-haiku-4-5"}]],
    )
    repair_attempts: int = Field(
        default=2,
        ge=0,
        le=10,
        description=(
            "With `output_schema`: how many times the model is asked to correct an answer"
            " that does not validate (even once repaired), quoting the errors."
        ),
    )
    stream: bool = Field(
        default=False,
        description=(
            "Stream the answer: each chunk goes out as a `step.delta` event on"
            " `GET /runs/{id}/events` as the model writes it; the step's result is the whole"
            " answer (validated at the end, with `output_schema`)."
        ),
    )

    @model_validator(mode="after")
    def _one_prompt(self) -> LlmStep:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of `prompt` and `messages`")
        return self


class StepConfig(StrictPayload):
    """One step of `STEPS_CONFIG`, started once its dependencies are done: an HTTP call
    (`type` `http`, the default), an LLM call (`llm`) or a child instruction run
    (`instructions`).

    Every string in `service_url`, `headers` and `input_prep_config` may use
    `{{original_input}}`, `{{input_data}}` and its keys, `{{<step>_result}}` (a finished
    step's parsed response) and each name in a finished step's `outputs`, with paths such as
    `{{fetch_result.items[0].title}}`; `{{secrets.NAME}}` is filled in by the worker when the
    call is made, never in the run.
    """

    step_name: str = Field(
        min_length=1,
        max_length=200,
        description=(
            "The step's name, unique in the pipeline; `{{<step_name>_result}}` is its result."
        ),
        examples=["step_1"],
    )
    usid: str = Field(
        min_length=1,
        max_length=200,
        description=(
            "The step's unique id in the pipeline; a selection dependency picks steps by it."
        ),
        examples=["a1b2c3d4"],
    )
    type: StepType = Field(
        default="http",
        description=(
            "`http`: call `service_url`; `llm`: ask a model (`llm`); `instructions`: run"
            " `instructions` as a child instruction run; `approval`: wait for a person"
            " (`approval`)."
        ),
    )
    service_url: str | None = Field(
        default=None,
        min_length=1,
        description="The http(s) URL the step calls (a template); required for `http` steps.",
        examples=["https://api.example.com/summarize"],
    )
    llm: LlmStep | None = Field(
        default=None,
        description=(
            "An `llm` step's call. Its result is `{text, json, provider, model, usage:"
            " {input_tokens, output_tokens}, finish_reason, requested_model, fallback, ladder}`."
        ),
    )
    instructions: Annotated[dict[str, Any], AfterValidator(shallow_json)] | None = Field(
        default=None,
        description=(
            "An `instructions` step's run: the body of `POST /` (`context`, `instructions`,"
            " `provider`, `model`...), run as a child instruction run; every string is a"
            " template, but `{{result}}` and `{{context}}` are left to the child. Its result is"
            " the child run's final status."
        ),
        examples=[{"context": "{{items}}", "instructions": ["Summarise the text."]}],
    )
    approval: ApprovalStep | None = Field(
        default=None,
        description=(
            "An `approval` step's wait. Approved, its result is `{decision, comment, data, by,"
            " at}`; rejected, it fails (`Rejected`) and its dependents are aborted."
        ),
    )
    method: str = Field(
        default="POST",
        description="The HTTP method, any case (GET, POST, PUT, PATCH, DELETE...).",
        examples=["POST"],
    )
    dependencies: list[str] = Field(
        default_factory=list,
        description=(
            "Names of the steps this one waits for; it starts as soon as they are done. A"
            " dependency `selection_<x>` is read when the step is ready, from a finished step's"
            " output of that name, else from Redis key `<namespace>:<workflow_id>:selection_<x>`"
            " (a JSON list of usids, or comma-separated): a step whose usid is not selected is"
            " aborted, with every step below it."
        ),
        examples=[["step_1"]],
    )
    outputs: list[str] = Field(
        default_factory=list,
        description=(
            "Names that get the step's main value (the message text of an OpenAI or Anthropic"
            " answer, otherwise the whole parsed body): later steps reference them as"
            " `{{<name>}}`, the run's `outputs` lists them, and each is written to Redis as"
            " JSON under `<namespace>:<workflow_id>:<name>`."
        ),
        examples=[["result_1"]],
    )
    headers: Annotated[dict[str, Any], AfterValidator(shallow_json)] = Field(
        default_factory=dict,
        description="Request headers; values are templates (objects are written as JSON).",
        examples=[{"Authorization": "Bearer {{input_data.token}}"}],
    )
    input_prep_config: InputPrepConfig | None = Field(
        default=None, description="How the request's body, query and headers are built."
    )
    # Per-step overrides of PIPELINE_SETTINGS.
    max_retries: int | None = Field(
        default=None,
        ge=0,
        le=50,
        description="Overrides `PIPELINE_SETTINGS.error_handling.max_retries` for this step.",
    )
    retry_delay: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="Overrides `PIPELINE_SETTINGS.error_handling.retry_delay` (seconds).",
    )
    timeout: float | None = Field(
        default=None,
        gt=0,
        le=24 * 3600,
        description="Overrides `PIPELINE_SETTINGS.timeouts.step_timeout` (seconds).",
    )
    endpoint: str | None = Field(
        default=None,
        description=(
            "The endpoint worker (a configured name, `ENDPOINT_WORKERS`) that makes this"
            " `http` step's call; unset: the main worker."
        ),
        examples=["endpoint-2"],
    )
    description: str | None = Field(
        default=None, description="What the step is for, for readers; the run ignores it."
    )
    map_over: str | None = Field(
        default=None,
        description=(
            "Run the step once per item of this list (a `{{…}}` template), with `{{item}}`"
            " and `{{item_index}}` in its templates; its result is the items' results in"
            " order, a failed item's null (`docs/pipelines.md`, Mapping over a list)."
        ),
        examples=["{{fetch_result.items}}"],
    )
    map: MapOptions | None = Field(
        default=None,
        description="How a `map_over` step runs its items and how many may fail.",
    )

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class ErrorHandling(StrictPayload):
    """How failed calls are retried. 5xx, 408, 429, timeouts and connection errors retry
    (`Retry-After` honoured, within the step's longest backoff and an hour); other 4xx fail
    the step at once."""

    max_retries: int = Field(
        default=2, ge=0, le=50, description="Retries of a failed call after its first attempt."
    )
    retry_delay: float = Field(
        default=3.0,
        gt=0,
        le=3600,
        description="Seconds before the first retry; each next wait doubles (exponential backoff).",
    )
    idempotency_keys: bool = Field(
        default=True,
        description=(
            "Send each step's calls with an `Idempotency-Key` header that every retry repeats"
            " (a UUID derived from the run and the step), so a target can drop a repeat; a"
            " header the step sets itself wins."
        ),
    )


class Timeouts(StrictPayload):
    """How long a call's attempt and the whole run may take (seconds)."""

    step_timeout: float = Field(
        default=45.0, gt=0, le=24 * 3600, description="Bounds each attempt of a step's call."
    )
    run_timeout: float | None = Field(
        default=6 * 3600,
        gt=0,
        le=MAX_RUN_TIMEOUT_SECONDS,
        description=(
            "The whole run's deadline (6 hours by default, at most a week): past it, running"
            " steps are cancelled and the run fails (`TimedOut`), keeping every finished"
            " step's result."
        ),
    )
    wait_timeout: float = Field(
        default=MAX_WAIT_SECONDS,
        gt=0,
        le=MAX_WAIT_SECONDS,
        description=(
            "The longest an approval step waits (7 days by default); time spent waiting does"
            " not count towards `run_timeout`."
        ),
    )


class Notifications(StrictPayload):
    """Where the run's events are POSTed."""

    webhook_url: str | None = Field(
        default=None,
        description=(
            "Receives the run's events in order (`workflow.started`, `step.started`,"
            " `step.waiting`, `step.completed`, `step.failed`, `step.aborted`,"
            " `workflow.paused`, `workflow.resumed`, `workflow.completed`, `workflow.failed`,"
            " `workflow.cancelled`) from a durable outbox that outlives the"
            " run; signed when `WEBHOOK_SIGNING_SECRET` is set."
        ),
        examples=["https://backend.example.com/webhook"],
    )


class Concurrency(StrictPayload):
    """How many steps run at once."""

    max_parallel: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description=(
            "Steps running at once, never more than the operator's `MAX_STEPS_IN_FLIGHT`;"
            " unset: that ceiling."
        ),
        examples=[8],
    )


class Execution(StrictPayload):
    """How the steps' calls run."""

    mode: ExecutionMode | None = Field(
        default=None,
        description=(
            "`durable`: each call a regular activity; `fast`: a local activity where it fits"
            " one; `auto`: a local activity when the step's whole worst case fits 60 s"
            " (`workflows.shared.execution`). Unset: the operator's `EXECUTION_MODE`. Decided"
            " at submission and carried by the run."
        ),
        examples=["auto"],
    )


class ResultCache(StrictPayload):
    """Which steps answer from the tenant's result cache (`activities.http.cache`)."""

    ttl_seconds: int = Field(
        gt=0,
        le=30 * 24 * 3600,
        description="How long an answer is reused after the call that made it.",
        examples=[3600],
    )
    steps: list[str] = Field(
        default_factory=list,
        description=(
            "The steps (by `step_name`) whose results are cached: a step with the same"
            " rendered request within the TTL makes no call."
        ),
        examples=[["fetch_prices"]],
    )
    llm: bool = Field(
        default=False,
        description="Cache every `llm` step's answer too, by provider, model, prompt and"
        " parameters.",
    )


class PipelineSettings(StrictPayload):
    """`PIPELINE_SETTINGS`: what applies to every step of the pipeline."""

    error_handling: ErrorHandling = Field(
        default_factory=ErrorHandling,
        description="Retries of failed calls, and idempotency keys.",
    )
    timeouts: Timeouts = Field(
        default_factory=Timeouts, description="The timeout of each attempt and of the run."
    )
    notifications: Notifications = Field(
        default_factory=Notifications, description="The webhook that receives the run's events."
    )
    concurrency: Concurrency = Field(
        default_factory=Concurrency, description="How many steps run at once."
    )
    execution: Execution = Field(
        default_factory=Execution, description="How the steps' calls run (the execution mode)."
    )
    cache: ResultCache | None = Field(
        default=None,
        description="Steps whose results are reused from earlier runs of the same tenant;"
        " unset: every step calls.",
    )
    budget: Budget | None = Field(
        default=None,
        description="What the run's LLM calls may spend, checked before each `llm` step's"
        " call; unset: no limit but the operator's.",
    )


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
    #: The tenant whose run this is (None: the open gateway): it prefixes the run's Redis
    #: keys, and chooses the secrets its calls may use and its webhooks' signing secret.
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
    #: The operator's options for the child runs of `instructions` steps, as the gateway
    #: stamps them on instruction runs (an `InstructionEngineOptions`, kept as JSON: engines
    #: do not import each other).
    instruction_engine: dict[str, Any] = Field(default_factory=dict)
    #: The price table (`LLM_PRICES_FILE` over the shipped one), stamped on runs with a
    #: `budget` only, so estimates replay as they were made.
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    #: What a call without `max_tokens` may generate (LLM_MAX_TOKENS), for budget estimates.
    llm_max_tokens: int = 4096
    #: The operator's LLM_FALLBACK_CHAIN, stamped on runs with a `budget` only: a `downgrade`
    #: picks from it for steps that name no `llm.fallback` of their own.
    llm_fallback_chain: list[ModelRef] = Field(default_factory=list)
    #: A `map_over` step with more items than this runs them in child workflows by batch
    #: (`workflows.dag.mapping`), so the run's own history stays bounded.
    map_inline_max_items: int = 200
    #: Set on the runs a schedule starts (`gateway.schedules`), which all share one input: each
    #: run's `workflow_id` is then its own Temporal id (the schedule's id and the time it was
    #: due) less this prefix, the tenant's ("" on the open gateway).
    scheduled_id_prefix: str | None = None


class PipelineRequest(StrictPayload):
    """The seed payload for `POST /execute`: a pipeline of HTTP, LLM and instruction steps,
    and its settings.

    Everything is validated before anything runs; a 422 lists every problem with the field at
    fault (duplicate names or usids, unknown dependencies, cycles, bad methods or URLs,
    `{{…}}` references to nothing or to a step the referencing step does not depend on).
    An unknown key anywhere is one of those problems (`workflows.shared.payloads`).
    """

    document_root: ClassVar[bool] = True

    workflow_id: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9._:@/-]+$",
        description=(
            "The run's id. A second POST with the id of a run still going attaches to that run"
            " instead of starting another."
        ),
        examples=["workflow-123"],
    )
    namespace: str = Field(
        default="default",
        min_length=1,
        max_length=200,
        description=(
            "A name for grouping runs; it prefixes the run's Redis keys, so it may not be"
            " `workflow-station`, the engine's own."
        ),
        examples=["my-workspace"],
    )

    @field_validator("namespace")
    @classmethod
    def _not_internal(cls, value: str) -> str:
        if is_internal_key_root(value):
            raise ValueError(f"namespace {value!r} is reserved for the engine's own Redis keys")
        return value

    original_input: ShallowJson = Field(
        default=None,
        description="Any JSON value, `{{original_input}}` in templates.",
        examples=["Input data"],
    )
    input_data: Annotated[dict[str, Any], AfterValidator(shallow_json)] = Field(
        default_factory=dict,
        description="A JSON object, `{{input_data}}` and `{{input_data.<key>}}` in templates.",
        examples=[{"input_1": "content"}],
    )
    STEPS_CONFIG: list[StepConfig] = Field(
        min_length=1,
        max_length=MAX_STEPS,
        description=(
            "The steps, 1 to 10,000; each starts as soon as its dependencies are done, and"
            " independent steps run concurrently."
        ),
    )
    PIPELINE_SETTINGS: PipelineSettings = Field(
        default_factory=PipelineSettings,
        description="Retries, timeouts, webhook, concurrency and execution mode.",
    )
    description: str | None = Field(
        default=None, description="What the pipeline is for, for readers; the run ignores it."
    )


class DagRunInput(PipelineRequest):
    """The workflow's input: the request plus the operator's `EngineOptions`, and for a run
    that continued as new, what the run before it had done."""

    engine: EngineOptions = Field(default_factory=EngineOptions)
    resume: DagResume | None = None
    #: A rerun (`POST /runs/{id}/rerun`): the source run's steps this run takes as they were.
    rerun: DagRerun | None = None

    @model_validator(mode="before")
    @classmethod
    def _decode_leniently(cls, data: Any) -> Any:
        # The gateway refused unknown keys when the run was submitted; a key older code wrote
        # and these models no longer know must not stop its history from replaying.
        return known_fields_only(cls, data)


class StepError(BaseModel):
    type: str
    message: str
    http_status: int | None = None
    attempts: int = 0


class Usage(BaseModel):
    """Tokens billed by a step's LLM calls, or by all of a run's, and what they cost; add
    with `+` (`activities.pricing.models`)."""

    input_tokens: int = 0
    output_tokens: int = 0
    #: USD, of the calls whose model has a price; None when none had one.
    cost_usd: float | None = None
    by_model: dict[str, ModelSpend] = Field(default_factory=dict)
    #: Models without a price, whose calls `cost_usd` leaves out.
    unpriced_models: list[str] = Field(default_factory=list)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=add_costs(self.cost_usd, other.cost_usd),
            by_model=add_by_model(self.by_model, other.by_model),
            unpriced_models=add_unpriced(self.unpriced_models, other.unpriced_models),
        )


class StepState(BaseModel):
    step_name: str
    usid: str
    type: StepType = "http"
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
    #: `llm` and `instructions` steps: who answered, and the tokens they billed.
    provider: str | None = None
    model: str | None = None
    usage: Usage | None = None
    #: An `instructions` step's child run (its workflow id), once started.
    child_workflow_id: str | None = None
    #: A rerun's step taken as it was: the run (its id) whose call produced it.
    reused_from: str | None = None
    #: The result-cache key of the request its call made (`http` and `llm` steps): a rerun
    #: that edits the step takes this state as it is when its request renders to the same key.
    request_key: str | None = None
    #: Its result came from the result cache (`PIPELINE_SETTINGS.cache`), made that long ago.
    cached: bool = False
    cache_age_seconds: float | None = None
    #: `llm` steps: the model asked for, the ones it moved off and why, and the rungs of the
    #: structured-output ladder taken (`activities.llm.fallback`, `activities.llm.ladder`).
    requested_model: str | None = None
    fallback: list[FallbackHop] = Field(default_factory=list)
    ladder: list[str] = Field(default_factory=list)
    #: A `map_over` step: its items by state, the indices of those that failed, and why.
    items: MapCounts | None = None
    failed_items: list[int] | None = None
    item_errors: list[ItemError] | None = None


class Progress(BaseModel):
    completed: int = 0
    failed: int = 0
    aborted: int = 0
    cancelled: int = 0
    running: int = 0
    #: Approval steps waiting for a person.
    waiting: int = 0
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
    #: Tokens billed by every `llm` and `instructions` step of the run.
    usage: Usage = Field(default_factory=Usage)
    #: A rerun: the run it reran, and what reusing that run's steps saved.
    rerun_of: str | None = None
    reuse: ReuseSummary | None = None
    #: The run's budget in effect (`PIPELINE_SETTINGS.budget`, as approvals raised it).
    budget: Budget | None = None
    #: What the result cache saved this run (`PIPELINE_SETTINGS.cache`), once it has a hit.
    cache: CacheSummary | None = None


class CacheSummary(BaseModel):
    """What the result cache saved a run: its hits (each a call not made) and the tokens the
    cached LLM answers had billed when they were made."""

    hits: int = 0
    tokens_saved: int = 0


class DagRerun(BaseModel):
    """What a rerun takes from its source run: the id it reruns and the reused steps' final
    states (results and outputs as the source recorded them, large values by `$ref`)."""

    source: str
    steps: dict[str, StepState] = Field(default_factory=dict)
    #: Steps that run again only because they or steps upstream of them were edited, with
    #: their source states: each is reused after all when it is reached with every upstream
    #: step reused and its request renders to its source's key (`workflows.dag.rerun`).
    edited: dict[str, StepState] = Field(default_factory=dict)
    #: `map_over` steps that run again: their source's item results, by step; only the items
    #: that failed run again.
    map_items: dict[str, MapCarry] = Field(default_factory=dict)


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
    #: Time spent waiting for approvals, which the run's deadline does not count.
    held_seconds: float = 0.0


class RerunRequest(StrictPayload):
    """`POST /runs/{workflow_id}/rerun`: what to run again, and with what edits. Every field
    is optional; an empty body reruns the steps that did not complete. A DAG run takes
    `from_step`, `steps` and `input_data`, an instruction run `from_instruction`,
    `instructions` and `context`; the other engine's fields are refused (422)."""

    document_root: ClassVar[bool] = True

    from_step: str | None = Field(
        default=None,
        description="Run this step and every step downstream of it again, even if they completed.",
    )
    steps: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Fields to lay over steps of the source pipeline, by step name (e.g."
        ' `{"charge": {"service_url": "https://..."}}`); an edited step and its downstream'
        " run again. The edited pipeline is validated as `POST /execute` would.",
    )
    input_data: Annotated[dict[str, Any], AfterValidator(shallow_json)] | None = Field(
        default=None,
        description="Replaces the source run's `input_data` (it does not by itself make a"
        " step run again: name one with `from_step`).",
    )
    workflow_id: str | None = Field(
        default=None,
        description="The new run's id; default `<source id>.rerun-<n>`, the first free n.",
    )
    from_instruction: int | None = Field(
        default=None,
        ge=0,
        description="For an instruction run (instead of `from_step`): run this instruction"
        " (0-based) again and the steps after it, starting from the state the source had when"
        " it reached it; the steps executed before it are reused.",
    )
    instructions: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="For an instruction run (instead of `steps`): fields to lay over"
        ' instructions, by index (e.g. `{"2": {"apiUrl": "https://..."}}`); the rerun starts'
        " at the first edited one. The edited run is validated as `POST /` would.",
    )
    context: str | None = Field(
        default=None,
        description="For an instruction run (instead of `input_data`): replaces the source's"
        " `context` (it does not by itself make a step run again).",
    )


class RerunAccepted(BaseModel):
    """A rerun that has started (202), and which steps it takes from its source."""

    workflow_id: str
    run_id: str | None = None
    rerun_of: str
    reused: list[str] = Field(default_factory=list)
    rerun: list[str] = Field(default_factory=list)
