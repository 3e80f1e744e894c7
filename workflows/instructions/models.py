"""The instruction-run payload users POST, and the status the instruction workflow reports.

`InstructionRunRequest` validates the request body in the gateway; `InstructionRunInput`, that
plus the operator's limits, is the workflow's input (through `pydantic_data_converter`).
Fields use Python names and read and write the seed's camelCase (`ifTrue`, `evaluateAfterStep`,
`apiUrl`, ...); both spellings are accepted on input. Every field added later must have a
default so recorded histories still decode.

An instruction is one of (0-based step indices throughout):

- LLM: a plain string, or `{"instruction": "...", "condition": {...}}`.
- Condition step: `{"type": "condition", "expression": ..., "ifTrue": [..], "ifFalse": [..]}`
  (`type` may be left out when there is an `expression` and no `instruction`).
- Endpoint: `{"type": "endpoint", "apiUrl": ..., "method": "GET", ...}`.
- Thread: `{"type": "thread", "collectFromSteps": [..], "outputFormat": "markdown"}`.
- Router: `{"type": "router", "evaluationPrompt": ..., "options": [..], "defaultOption": ..}`.
- Approval: `{"type": "approval", "message": ..., "timeout": .., "on_timeout": .., "schema": ..}`
  (the DAG approval step's fields, `workflows.shared.approvals`).

Errors locate the fault: per-instruction problems carry a `loc` such as
`("instructions", 2, "endpoint", "method")`, and cross-step problems (step indices out of
range) are reported on `instructions` with the path in the message, e.g.
`instructions[2].ifTrue[0]: step 7 is out of range (3 instructions)`.
`error_details` renders both kinds as such lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from activities.http.models import HTTP_METHODS, is_http_url
from activities.llm.models import DEFAULT_MODELS, FallbackHop, LlmProvider, TokenUsage
from kernel.limits import shallow_json
from kernel.models import CamelModel
from workflows.instructions.conditions import ConditionSyntaxError, parse, try_parse
from workflows.shared.approvals import MAX_WAIT_SECONDS, ApprovalStep
from workflows.shared.execution import LOCAL_MAX_SECONDS, ExecutionMode
from workflows.shared.runs import InstructionRunState, ReuseSummary, StepStatus

ConditionMode: TypeAlias = Literal["deterministic", "llm"]
HttpMethod: TypeAlias = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
ThreadFormat: TypeAlias = Literal["json", "markdown", "numbered"]
InstructionType: TypeAlias = Literal["llm", "condition", "endpoint", "thread", "router", "approval"]

#: Instructions one run may hold (a run executes each at most once).
MAX_INSTRUCTIONS = 1000
#: A condition is a line of the condition language or a question for an LLM, not a document.
MAX_EXPRESSION_CHARS = 4000
INSTRUCTION_TYPES: tuple[str, ...] = (
    "llm",
    "condition",
    "endpoint",
    "thread",
    "router",
    "approval",
)


class _SeedModel(CamelModel):
    """Seed payloads: camelCase on the wire; unknown keys are typos, so rejected."""

    model_config = ConfigDict(extra="forbid")


def _check_mode(mode: ConditionMode | None, expression: str | None) -> ConditionMode | None:
    if mode == "deterministic":
        if not expression:
            raise PydanticCustomError(
                "expression_required", "mode 'deterministic' needs an expression"
            )
        try:
            parse(expression)
        except ConditionSyntaxError as exc:
            raise PydanticCustomError(
                "condition_syntax",
                "the expression does not parse, so it cannot be 'deterministic': {reason} "
                "at position {position}",
                {"reason": exc.reason, "position": exc.position},
            ) from None
    return mode


class Condition(_SeedModel):
    """A branch: after its step runs, test a result and queue `if_true` or `if_false`.

    `mode` None means automatic: deterministic when `expression` is in the condition
    language (`workflows.instructions.conditions`), otherwise an LLM judges it. `'deterministic'`
    demands that it parses (checked here); `'llm'` always asks the LLM.
    """

    expression: str = Field(
        min_length=1,
        max_length=MAX_EXPRESSION_CHARS,
        description=(
            "What to test: a line of the condition language (`result contains 'x'`,"
            " `result == 'x'`, `!=`, `length > 10`, `result matches /re/i`, `result is empty`,"
            " `result is json`, JSON fields such as `result.items[0].n > 3`, with `not`, `and`,"
            " `or` and parentheses), or a question for the LLM. At most 4,000 characters."
        ),
        examples=["result contains 'yes'"],
    )
    evaluate_after_step: int | None = Field(
        default=None,
        description=(
            "The step (0-based) whose result is tested; unset: the step the condition is on"
            " (for a condition step, the previous executed step)."
        ),
        examples=[0],
    )
    if_true: list[int] = Field(
        default_factory=list,
        description=(
            "Steps (0-based) queued next when the condition holds. A step named in any"
            " `ifTrue`/`ifFalse` runs only when a condition sends the run there."
        ),
        examples=[[2]],
    )
    if_false: list[int] = Field(
        default_factory=list,
        description="Steps (0-based) queued next when the condition does not hold.",
        examples=[[3]],
    )
    mode: ConditionMode | None = Field(
        default=None,
        description=(
            "`deterministic`: the condition language, no LLM (the expression must parse);"
            " `llm`: the model gives a strict true/false verdict. Unset: deterministic when the"
            " expression parses, else the LLM, decided at submission."
        ),
    )

    @field_validator("mode")
    @classmethod
    def _mode_matches_expression(
        cls, mode: ConditionMode | None, info: ValidationInfo
    ) -> ConditionMode | None:
        if "expression" not in info.data:
            return mode  # the expression's own error says enough
        return _check_mode(mode, info.data["expression"])

    @model_validator(mode="after")
    def _decide_mode(self) -> Condition:
        # Decided once, at submission, and carried in the workflow's input: were the
        # workflow to decide during replay, a grammar change in a later release would change
        # the commands (an LLM call or none) of runs already in flight.
        if self.mode is None:
            self.mode = "deterministic" if try_parse(self.expression) is not None else "llm"
        return self


class LlmInstruction(_SeedModel):
    """Ask the LLM `instruction` about the previous step's result (or the context)."""

    type: Literal["llm"] = Field(
        default="llm", description="`llm`; a plain string is an LLM instruction too."
    )
    instruction: str = Field(
        min_length=1,
        description="What to ask the model about the previous step's result (or the context).",
        examples=["Summarize this text in one sentence"],
    )
    condition: Condition | None = Field(
        default=None, description="A branch taken on this step's result once it has run."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_plain_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"instruction": data}
        return data


class ConditionInstruction(Condition):
    """A step that only branches.

    It tests the previous executed step's result (or `evaluate_after_step`'s) and passes the
    previous result through unchanged as its own result.
    """

    type: Literal["condition"] = Field(
        default="condition",
        description=(
            "`condition`; may be left out when there is an `expression` and no `instruction`."
        ),
    )


ENDPOINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class EndpointSpec(_SeedModel):
    """An HTTP call; `{{result}}` and `{{context}}` in headers and body are filled in.

    `endpoint_url` picks who makes the call: a configured endpoint worker's name
    (`endpoint-2`), a URL whose host's first label is one (`https://endpoint-2.workers.dev`),
    or any other URL, an external proxy that speaks the seed's endpoint-worker format.
    `retry_delay` and `timeout` are milliseconds, as in the seed.
    """

    endpoint_url: str | None = Field(
        default=None,
        description=(
            "Who makes the call: a configured endpoint worker's name, a URL whose host's first"
            " label is one, or any other URL (an external proxy that speaks the endpoint-worker"
            " format). Unset: the main worker."
        ),
        examples=["endpoint-2", "https://endpoint-2.workers.dev"],
    )
    api_url: str = Field(
        description="The http(s) URL called; `{{secrets.NAME}}` may appear in it.",
        examples=["https://api.example.com/articles/temporal"],
    )
    method: HttpMethod = Field(default="GET", description="The HTTP method, any case.")
    headers: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Request headers; `{{result}}`, `{{context}}` and `{{secrets.NAME}}` are filled in."
        ),
    )
    body: Annotated[JsonValue, AfterValidator(shallow_json)] = Field(
        default=None,
        description=(
            "The request body, any JSON value; `{{result}}`, `{{context}}` and"
            " `{{secrets.NAME}}` are filled in."
        ),
        examples=[{"text": "{{result}}"}],
    )
    retries: int = Field(
        default=3,
        ge=0,
        le=20,
        description=(
            "Retries after the first attempt, for 5xx, 408, 429 and network errors; other 4xx"
            " fail the step."
        ),
    )
    retry_delay: int = Field(
        default=1000,
        ge=0,
        le=3_600_000,
        description="Milliseconds before the first retry, doubling; at most an hour.",
    )
    timeout: int = Field(
        default=30000,
        gt=0,
        le=86_400_000,
        description="Milliseconds one attempt may take; at most a day.",
    )
    idempotency_key: bool = Field(
        default=True,
        description="Send the call with an `Idempotency-Key` header that every retry repeats.",
    )

    @field_validator("method", mode="before")
    @classmethod
    def _known_method(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().upper() in HTTP_METHODS:
            return value.strip().upper()
        raise PydanticCustomError(
            "http_method",
            "unknown HTTP method '{method}' (expected GET, POST, PUT, PATCH or DELETE)",
            {"method": value},
        )

    @field_validator("endpoint_url")
    @classmethod
    def _name_or_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if ENDPOINT_NAME.fullmatch(value.strip()):
            return value.strip()
        return cls._http_url(value)

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not is_http_url(value):
            raise PydanticCustomError("http_url", "'{url}' is not an http(s) URL", {"url": value})
        return value.strip()


class EndpointInstruction(EndpointSpec):
    """Call an HTTP API; its response body becomes the step's result."""

    type: Literal["endpoint"] = Field(default="endpoint", description="`endpoint`.")
    condition: Condition | None = Field(
        default=None, description="A branch taken on this step's result once it has run."
    )


class CompletionCheck(_SeedModel):
    """How a thread decides it is complete; see `threads.deterministic_complete`."""

    mode: ConditionMode = Field(
        default="deterministic",
        description=(
            "`deterministic`: complete when every listed step ran with output, or when"
            " `expression` holds; `llm`: the model's verdict."
        ),
    )
    expression: str | None = Field(
        default=None,
        max_length=MAX_EXPRESSION_CHARS,
        description="A condition-language expression, or the question for the LLM.",
    )

    @model_validator(mode="after")
    def _deterministic_parses(self) -> CompletionCheck:
        if self.mode == "deterministic" and self.expression is not None:
            _check_mode(self.mode, self.expression)
        return self


class ThreadInstruction(_SeedModel):
    """Gather earlier steps' results into one formatted text."""

    type: Literal["thread"] = Field(default="thread", description="`thread`.")
    collect_from_steps: list[int] = Field(
        min_length=1,
        description=(
            "Steps (0-based) whose results are gathered; a step listed twice is collected"
            " once, and a step that did not run shows as skipped."
        ),
        examples=[[0, 1]],
    )

    @field_validator("collect_from_steps")
    @classmethod
    def _each_step_once(cls, steps: list[int]) -> list[int]:
        # A step listed twice would be collected twice: keep the first mention.
        return list(dict.fromkeys(steps))

    output_format: ThreadFormat = Field(
        default="markdown",
        description=(
            "`numbered` (`1. …`), `markdown` (`## Step <i>` and the result) or `json`"
            " (`[{step, status, result}]`)."
        ),
    )
    completion_check: CompletionCheck | None = Field(
        default=None,
        description="How the thread decides it is complete (recorded as `complete`).",
    )


class RouterOption(_SeedModel):
    """One endpoint a router may pick."""

    id: str = Field(
        min_length=1,
        description="The option's id, unique in the router; the model answers with one.",
        examples=["billing"],
    )
    name: str = Field(default="", description="A name the model sees.")
    description: str = Field(
        default="", description="What the option is for, as the model sees it."
    )
    endpoint: EndpointSpec = Field(description="The call made when the option is picked.")


class RouterInstruction(_SeedModel):
    """Let the LLM pick one option's endpoint and call it.

    When the LLM's answer names no option, `default_option` is used, or the first option
    when there is no default (`fallback_option`).
    """

    type: Literal["router"] = Field(default="router", description="`router`.")
    description: str = Field(default="", description="What the router decides, for the model.")
    evaluation_prompt: str = Field(
        min_length=1,
        description="The question the model answers by picking one option's id.",
        examples=["Which team should handle this request?"],
    )
    options: list[RouterOption] = Field(
        description="The options, at least one, their ids distinct."
    )
    default_option: str | None = Field(
        default=None,
        description=(
            "The option used when the model's answer names none or fails; unset: the first."
        ),
    )

    @field_validator("options")
    @classmethod
    def _options_are_distinct(cls, options: list[RouterOption]) -> list[RouterOption]:
        if not options:
            raise PydanticCustomError("router_options", "a router needs at least one option")
        seen: dict[str, int] = {}
        for position, option in enumerate(options):
            if option.id in seen:
                raise PydanticCustomError(
                    "router_option_duplicate",
                    "duplicate option id '{id}' (options[{first}] and options[{second}])",
                    {"id": option.id, "first": seen[option.id], "second": position},
                )
            seen[option.id] = position
        return options

    @field_validator("default_option")
    @classmethod
    def _default_is_an_option(cls, value: str | None, info: ValidationInfo) -> str | None:
        options = info.data.get("options")
        if value is None or options is None:
            return value
        ids = [option.id for option in options]
        if value not in ids:
            raise PydanticCustomError(
                "router_default_option",
                "'{value}' is not one of the option ids ({ids})",
                {"value": value, "ids": ", ".join(ids)},
            )
        return value

    def option(self, option_id: str) -> RouterOption | None:
        """The option with this id, if any."""
        return next((o for o in self.options if o.id == option_id), None)

    @property
    def fallback_option(self) -> RouterOption:
        """The option used when the LLM's choice names none: the default, else the first."""
        if self.default_option is not None:
            chosen = self.option(self.default_option)
            if chosen is not None:
                return chosen
        return self.options[0]


class ApprovalInstruction(ApprovalStep):
    """Wait for a person (`POST /runs/{id}/steps/{index}/approve`); approved, the decision
    `{decision, comment, data, by, at}` (as JSON) is the next step's input.

    The message may hold `{{result}}` (the previous result) and `{{context}}`. Its fields
    are the DAG approval step's, with its names (`on_timeout`).
    """

    type: Literal["approval"] = Field(description="`approval`.")


def _instruction_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "llm"
    if isinstance(value, BaseModel):
        return getattr(value, "type", None)
    if isinstance(value, dict):
        kind = value.get("type")
        if kind is not None:
            return kind if isinstance(kind, str) else None
        if "instruction" in value:
            return "llm"
        if "expression" in value:
            return "condition"
    return None


def _known_kind(value: Any) -> Any:
    # Runs before the tagged union so an unknown `type` is reported by name, per item.
    if isinstance(value, str | BaseModel):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "instruction_type",
            "expected a string or an object, got {kind}",
            {"kind": type(value).__name__},
        )
    if _instruction_kind(value) in INSTRUCTION_TYPES:
        return value
    if "type" in value:
        raise PydanticCustomError(
            "instruction_type",
            "unknown instruction type '{type}' (expected llm, condition, endpoint, "
            "thread, router or approval)",
            {"type": value["type"]},
        )
    raise PydanticCustomError(
        "instruction_type",
        "instruction type missing, and no instruction or expression to infer it from "
        "(expected llm, condition, endpoint, thread, router or approval)",
    )


Instruction: TypeAlias = Annotated[
    Annotated[LlmInstruction, Tag("llm")]
    | Annotated[ConditionInstruction, Tag("condition")]
    | Annotated[EndpointInstruction, Tag("endpoint")]
    | Annotated[ThreadInstruction, Tag("thread")]
    | Annotated[RouterInstruction, Tag("router")]
    | Annotated[ApprovalInstruction, Tag("approval")],
    Discriminator(
        _instruction_kind,
        custom_error_type="instruction_type",
        custom_error_message=(
            "an instruction is a string or an object whose type is llm, condition, "
            "endpoint, thread, router or approval"
        ),
    ),
    BeforeValidator(_known_kind),
]


def condition_of(instruction: Instruction) -> Condition | None:
    """The condition a step carries: its own for a condition step, nested for LLM/endpoint."""
    if isinstance(instruction, ConditionInstruction):
        return instruction
    if isinstance(instruction, LlmInstruction | EndpointInstruction):
        return instruction.condition
    return None


def _step_problems(instructions: list[Instruction]) -> list[str]:
    count = len(instructions)
    problems: list[str] = []

    def check(index: int, field: str, step: int | None) -> None:
        if step is not None and not 0 <= step < count:
            problems.append(
                f"instructions[{index}].{field}: step {step} is out of range "
                f"({count} instruction{'s' if count != 1 else ''})"
            )

    for index, instruction in enumerate(instructions):
        condition = condition_of(instruction)
        prefix = "" if isinstance(instruction, ConditionInstruction) else "condition."
        if condition is not None:
            check(index, f"{prefix}evaluateAfterStep", condition.evaluate_after_step)
            for field, steps in (("ifTrue", condition.if_true), ("ifFalse", condition.if_false)):
                for position, step in enumerate(steps):
                    check(index, f"{prefix}{field}[{position}]", step)
        if isinstance(instruction, ThreadInstruction):
            for position, step in enumerate(instruction.collect_from_steps):
                field = f"collectFromSteps[{position}]"
                check(index, field, step)
                if step == index:
                    problems.append(
                        f"instructions[{index}].{field}: a thread cannot collect its own result"
                    )
    return problems


class InstructionEngineOptions(BaseModel):
    """Operator limits the gateway stamps on each run from settings (never from the user).

    They travel in the input, so a run keeps the limits it started with.
    """

    llm_step_timeout_seconds: float = Field(default=300.0, gt=0)
    llm_condition_timeout_seconds: float = Field(default=120.0, gt=0)
    #: Retries of a failed LLM call after the first attempt (exponential backoff).
    llm_max_retries: int = Field(default=3, ge=0)
    llm_retry_initial_seconds: float = Field(default=1.0, gt=0)
    #: Tokens (input and output) the run may spend on LLM calls; None: no budget.
    token_budget: int | None = Field(default=None, ge=1)
    #: Executions allowed per run: a second guard beside "no step runs twice".
    step_budget: int = Field(default=100, ge=1)
    #: Configured endpoint worker names, for `endpointUrl` routing.
    endpoint_workers: list[str] = Field(default_factory=list)
    #: The largest headers and body an endpoint step may render, as JSON text.
    max_request_chars: int = 1_000_000
    #: The whole run's deadline (INSTRUCTION_RUN_TIMEOUT_SECONDS): past it the running step is
    #: cancelled and the run errors with `TimedOut`. None: no deadline.
    run_timeout_seconds: float | None = Field(default=3600.0, gt=0)
    #: How endpoint steps run, resolved at submission (the request's `executionMode`, else
    #: EXECUTION_MODE); durable for inputs recorded before modes existed.
    execution_mode: ExecutionMode = "durable"
    #: The bound on a local activity's attempt and retry waits (`execution.runs_local`).
    local_max_seconds: float = LOCAL_MAX_SECONDS
    #: The tenant whose run this is: its endpoint calls fill in that tenant's secrets (None:
    #: the open gateway, and runs recorded before this field; the default tenant's).
    tenant: str | None = None
    #: The longest an approval instruction waits (its own `timeout` may be shorter); its wait
    #: does not count towards `run_timeout_seconds`.
    wait_timeout_seconds: float = Field(default=MAX_WAIT_SECONDS, gt=0)
    #: USD the run's LLM calls may cost: what its parent DAG run's `budget` left when an
    #: `instructions` step started it (`workflows.dag.budget`); None: no limit.
    cost_budget_usd: float | None = None


def _plain_strings_in_schema(schema: JsonDict) -> None:
    """Adds what the tagged union's JSON Schema cannot say: a plain string is an instruction
    too (`LlmInstruction._from_plain_string`). Validation is the union's, unchanged."""
    items = schema.get("items")
    choices = items.get("oneOf") if isinstance(items, dict) else None
    if isinstance(choices, list):
        choices.insert(0, {"type": "string", "minLength": 1, "description": "An LLM instruction."})


class InstructionRunRequest(CamelModel):
    """What a user POSTs to start an instruction run.

    The legacy body `{context, firstInstruction, secondInstruction, provider?, model?}`
    is read as two LLM instructions.
    """

    context: str = Field(
        description="The text the first step works on.",
        examples=["Temporal keeps workflows running through crashes."],
    )
    instructions: list[Instruction] = Field(
        max_length=MAX_INSTRUCTIONS,
        json_schema_extra=_plain_strings_in_schema,
        description=(
            "The steps, 1 to 1,000, run as a queue: each works on the previous executed step's"
            " result. Each is a string (an LLM instruction) or an object whose `type` is"
            " `llm`, `condition`, `endpoint`, `thread` or `router`. A step never runs twice."
        ),
        examples=[["Summarize this text in one sentence", "Write a tagline about it"]],
    )
    provider: LlmProvider = Field(
        default="openai", description="The LLM provider of the run's LLM steps."
    )
    model: str | None = Field(
        default=None,
        description=(
            "The model to call; unset or blank: the provider's default (`gpt-5-nano`,"
            " `claude-haiku-4-5`)."
        ),
    )
    execution_mode: ExecutionMode | None = Field(
        default=None,
        description=(
            "How endpoint steps' calls run: `durable`, `fast` or `auto`"
            " (`workflows.shared.execution`); unset: the operator's `EXECUTION_MODE`."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_format(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        legacy = [
            key
            for key in (
                "firstInstruction",
                "secondInstruction",
                "first_instruction",
                "second_instruction",
            )
            if key in data
        ]
        if not legacy:
            return data
        if "instructions" in data:
            raise PydanticCustomError(
                "legacy_format",
                "send either instructions or firstInstruction/secondInstruction, not both",
            )
        data = dict(data)
        steps = []
        for camel, snake in (
            ("firstInstruction", "first_instruction"),
            ("secondInstruction", "second_instruction"),
        ):
            value = data.pop(camel, data.pop(snake, None))
            if value is None:
                continue
            if not isinstance(value, str):
                raise PydanticCustomError(
                    "legacy_format", "{field}: must be a string", {"field": camel}
                )
            steps.append(value)
        data["instructions"] = steps
        return data

    @field_validator("instructions", mode="before")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise PydanticCustomError(
                "instructions_empty", "instructions: at least one instruction is required"
            )
        return value

    @field_validator("instructions")
    @classmethod
    def _steps_in_range(cls, instructions: list[Instruction]) -> list[Instruction]:
        problems = _step_problems(instructions)
        if problems:
            raise PydanticCustomError(
                "step_reference", "{summary}", {"summary": "; ".join(problems)}
            )
        return instructions

    @field_validator("model", mode="before")
    @classmethod
    def _blank_model_is_default(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @property
    def effective_model(self) -> str:
        """The model to call: `model`, else the provider's default."""
        return self.model or DEFAULT_MODELS[self.provider]


class InstructionRunInput(InstructionRunRequest):
    """The workflow's input: the request plus the operator's limits, and for a run that
    continued as new, what the run before it had done."""

    engine: InstructionEngineOptions = Field(default_factory=InstructionEngineOptions)
    resume: InstructionResume | None = None
    #: A rerun's start: the steps it takes from its source (`workflows.instructions.rerun`).
    rerun: InstructionRerun | None = None


def _path(loc: Sequence[str | int]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def error_details(
    errors: Iterable[Mapping[str, Any]], prefix: Sequence[str | int] = ()
) -> list[dict[str, Any]]:
    """Validation errors (`ValidationError.errors()`, or FastAPI's with `body` taken off the
    front of `loc`) as `{loc, msg, type}` items whose `msg` names the field at fault.

    `msg` reads like `instructions[2].method: unknown HTTP method`; the tag pydantic adds after
    an instruction's index (`instructions.2.endpoint.method`) is dropped from `loc` too. A
    step-reference error, which carries its own paths, becomes one item per problem. `prefix`
    is put in front of every location (`("workflows", 3)` for one run of a batch).
    """
    details: list[dict[str, Any]] = []
    for item in errors:
        loc = list(item["loc"])
        if len(loc) >= 3 and loc[0] == "instructions" and isinstance(loc[1], int):
            if loc[2] in INSTRUCTION_TYPES:
                del loc[2]
        path = _path(loc)
        message = item["msg"].removeprefix("Value error, ")
        if not path or message.startswith(f"{path}"):
            messages = message.split("; ") if item["type"] == "step_reference" else [message]
        else:
            messages = [f"{path}: {message}"]
        head = _path(prefix)
        for text in messages:
            if head:
                text = f"{head}.{text}" if path else f"{head}: {text}"
            details.append({"loc": [*prefix, *loc], "msg": text, "type": item["type"]})
    return details


# --- status ------------------------------------------------------------------------------


class StepError(CamelModel):
    """Why a step failed: the `ApplicationError.type`, its message and attempts made."""

    type: str
    message: str
    attempts: int = 1


class ConditionOutcome(CamelModel):
    """How a step's condition came out, and which step's result it looked at."""

    mode: ConditionMode
    verdict: bool
    reason: str | None = None
    evaluated_step: int | None = None
    next_steps: list[int] = Field(default_factory=list)


class RouterDecision(CamelModel):
    """The option a router picked; `fallback_used` when the LLM's answer named none."""

    chosen: str | None = None
    fallback_used: bool = False
    #: The model's stated reason, or why its answer could not be used.
    reason: str | None = None


class ThreadOutcome(CamelModel):
    """Whether a thread's completion check passed."""

    complete: bool = False


class StepState(CamelModel):
    """One instruction's progress, as the status query reports it."""

    index: int
    type: InstructionType
    status: StepStatus = "pending"
    result: str | None = None
    error: StepError | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    usage: TokenUsage = Field(default_factory=TokenUsage)
    condition: ConditionOutcome | None = None
    router: RouterDecision | None = None
    thread: ThreadOutcome | None = None
    #: The run whose call made this result, for a step a rerun reused.
    reused_from: str | None = None
    #: An `llm` step: the model that answered, and the models its call moved off (to the next
    #: of the operator's LLM_FALLBACK_CHAIN) and why; empty when its own model answered.
    model: str | None = None
    fallback: list[FallbackHop] = Field(default_factory=list)


class RunError(CamelModel):
    """Why a run errored, and at which step when one is to blame."""

    type: str
    message: str
    step: int | None = None


class InstructionRunStatus(CamelModel):
    """The instruction workflow's status query result."""

    status: InstructionRunState = "queued"
    steps: list[StepState] = Field(default_factory=list)
    execution_order: list[int] = Field(default_factory=list)
    output: str | None = None
    error: RunError | None = None
    usage: TokenUsage = Field(default_factory=TokenUsage)
    #: The run this one reruns, and what it took from it.
    rerun_of: str | None = None
    reuse: ReuseSummary | None = None

    @classmethod
    def for_input(cls, run: InstructionRunInput) -> InstructionRunStatus:
        """A queued status with one pending `StepState` per instruction."""
        return cls(
            steps=[
                StepState(index=index, type=instruction.type)
                for index, instruction in enumerate(run.instructions)
            ]
        )


class PlanState(CamelModel):
    """An `InstructionPlan`'s progress: the queue, front first, and what ran, in order."""

    queue: list[int] = Field(default_factory=list)
    executed: list[int] = Field(default_factory=list)


class InstructionResume(CamelModel):
    """What a run hands to the next run of its chain when it continues as new."""

    status: InstructionRunStatus
    #: index -> result of every step that completed.
    results: dict[int, str | None] = Field(default_factory=dict)
    plan: PlanState = Field(default_factory=PlanState)
    started_at: datetime | None = None
    #: The last event's sequence and the newest events (`workflows.shared.events`).
    sequence: int = 0
    events: list[dict[str, Any]] = Field(default_factory=list)
    #: Time spent waiting for approvals, which the run's deadline does not count.
    held_seconds: float = 0.0


class InstructionRerun(CamelModel):
    """What a rerun takes from its source run: the reused steps' final states (results,
    condition verdicts, usage) and the queue as the source had it when it reached the first
    step that runs again."""

    source: str
    steps: list[StepState] = Field(default_factory=list)
    plan: PlanState = Field(default_factory=PlanState)
