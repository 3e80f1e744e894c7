"""Inputs and outputs of the LLM activities (one model in, one out), and their names.

I/O-free: workflows import this module, never `activities.llm.activities` (the SDKs).

They travel through `pydantic_data_converter` and live in workflow histories, so every field
added later needs a default.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Final, Literal

from pydantic import BaseModel, Field

from activities.pricing.models import ModelSpend, add_by_model, add_costs, add_unpriced
from activities.store.models import ResultCaching, cache_key
from kernel.models import CamelModel

#: Activity names, as workflows schedule them and `LlmActivities` registers them.
CALL_LLM: Final = "call_llm"
JUDGE_CONDITION: Final = "judge_condition"
CHOOSE_ROUTE: Final = "choose_route"

#: The longest an LLM call waits for its rate-limit slot (`activities.llm.ratelimit`) before it
#: is sent; a DAG `llm` step's activity is given this much beyond the step's timeout, so the
#: wait never eats into the time the provider has to answer.
MAX_RATE_LIMIT_WAIT: Final = timedelta(minutes=10)

LlmProvider = Literal["openai", "anthropic"]
DEFAULT_MODELS: dict[str, str] = {"openai": "gpt-5-nano", "anthropic": "claude-haiku-4-5"}


class TokenUsage(CamelModel):
    """Tokens billed for one or more calls (camelCase in a run's status); add with `+`."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    #: USD, priced in the activity (`activities.pricing.models`): of the priced part of a total;
    #: None when no call was priced.
    cost_usd: float | None = None
    by_model: dict[str, ModelSpend] = Field(default_factory=dict)
    #: Models the price table does not know, whose calls `cost_usd` leaves out.
    unpriced_models: list[str] = Field(default_factory=list)

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cost_usd=add_costs(self.cost_usd, other.cost_usd),
            by_model=add_by_model(self.by_model, other.by_model),
            unpriced_models=add_unpriced(self.unpriced_models, other.unpriced_models),
        )


class LlmMessage(BaseModel):
    """One turn of a conversation sent to a model."""

    role: Literal["system", "user", "assistant"] = Field(
        description="Who speaks: `system`, `user` or `assistant`."
    )
    content: str = Field(description="What they say; a template in a DAG `llm` step.")


class ModelRef(BaseModel):
    """A model to ask, by provider and name: one link of a fallback chain."""

    provider: LlmProvider = Field(description="`openai` or `anthropic`.")
    model: str = Field(min_length=1, description="The model, as the provider names it.")


class FallbackHop(BaseModel):
    """A model a call moved away from (`activities.llm.fallback`), and why."""

    provider: LlmProvider
    model: str
    #: What it answered: `529 overloaded`, `429 rate limited`, `timed out`...
    reason: str


def fallback_chain(
    fallback: list[ModelRef] | Literal[False] | None, operator_chain: Sequence[ModelRef]
) -> list[ModelRef]:
    """The models a call may move to, in order: its own `fallback`, none when it says
    `false`, else the operator's LLM_FALLBACK_CHAIN. I/O-free, so a workflow may ask it too."""
    if fallback is False:
        return []
    return list(operator_chain if fallback is None else fallback)


class LlmCall(BaseModel):
    """One prompt for one model: an LLM step or instruction.

    `prompt` is one user message; `messages`, when given, is the whole conversation instead
    (a DAG `llm` step's). With `output_schema` the answer is asked for as structured output and
    must validate against it (`activities.llm.structured`).
    """

    provider: LlmProvider
    model: str
    system: str | None = None
    prompt: str = ""
    #: None: the worker's LLM_MAX_TOKENS.
    max_tokens: int | None = None
    #: Who is calling, for error messages ("step 'summarise'", "instruction 3").
    label: str = ""
    messages: list[LlmMessage] | None = None
    #: None: the provider's default.
    temperature: float | None = None
    #: A JSON Schema the answer must validate against.
    output_schema: dict[str, Any] | None = None
    #: Whose run asks, for the result cache's keys (None: the open gateway's runs).
    tenant: str | None = None
    #: Answer from the tenant's result cache when the same prompt was asked within its TTL.
    #: None (calls recorded before caching too): every attempt asks the model.
    cache: ResultCaching | None = None
    #: The models to move to, in order, when this one is unavailable; False: none; None: the
    #: worker's LLM_FALLBACK_CHAIN (`fallback_chain`).
    fallback: list[ModelRef] | Literal[False] | None = None
    #: Corrective re-prompts after an answer that breaks `output_schema` (`activities.llm.ladder`).
    repair_attempts: int = 2
    #: Stream the answer: each chunk goes to the run's watchers as a `step.delta` event
    #: (`activities.llm.streaming`) under `step_name`; the result is the whole answer still.
    stream: bool = False
    step_name: str = ""
    #: How long the provider has to answer once the request is sent (the SDK's request
    #: timeout; the wait for a rate-limit slot comes before it). None: the worker's.
    timeout_seconds: float | None = None


class LlmText(BaseModel):
    text: str
    usage: TokenUsage = Field(default_factory=TokenUsage)
    #: The model that answered, as the provider names it.
    model: str
    attempt: int = 1
    #: Why the model stopped, as the provider says it (`stop`, `end_turn`, `length`...).
    finish_reason: str | None = None
    #: The validated answer, when the call named an `output_schema`.
    json_value: Any = None
    #: Taken from the result cache (`LlmCall.cache`), made that long ago: no model was asked
    #: and no token billed (`usage` is zero).
    cached: bool = False
    cache_age_seconds: float | None = None
    #: Who answered (None in answers recorded before fallback): the call's provider, or a
    #: fallback's.
    provider: LlmProvider | None = None
    #: The model the call asked for, when a fallback answered instead (`fallback` says why).
    requested_model: str | None = None
    fallback: list[FallbackHop] = Field(default_factory=list)
    #: The rungs of the structured-output ladder taken, in order (`activities.llm.ladder`):
    #: `native`, `repaired`, `reprompt:1`... Empty without an `output_schema`.
    ladder: list[str] = Field(default_factory=list)
    #: On a hit: the tokens the cached answer had billed when it was made, saved this time.
    saved_usage: TokenUsage | None = None
    #: How long the call waited for its rate-limit slot before it was sent.
    rate_limit_wait_seconds: float = 0.0


class ConditionVerdictRequest(BaseModel):
    """Ask a model whether `expression` holds for a step's result."""

    provider: LlmProvider
    model: str
    expression: str
    result_text: str
    label: str = ""
    #: Whose run asks, for its daily LLM budget (None: the open gateway's).
    tenant: str | None = None


class LlmVerdict(BaseModel):
    verdict: bool
    reason: str = ""
    usage: TokenUsage = Field(default_factory=TokenUsage)
    #: "structured": the model answered with the requested JSON; "fallback": read from free text.
    parsed_with: Literal["structured", "fallback"] = "structured"
    attempt: int = 1


class RouteOptionBrief(BaseModel):
    """What the model is told about one branch a router may take."""

    id: str
    name: str = ""
    description: str = ""


class RouteRequest(BaseModel):
    """Ask a model to pick one of `options` given the previous step's result."""

    provider: LlmProvider
    model: str
    description: str = ""
    evaluation_prompt: str = ""
    previous_result: str = ""
    options: list[RouteOptionBrief] = Field(default_factory=list)
    label: str = ""
    #: Whose run asks, for its daily LLM budget (None: the open gateway's).
    tenant: str | None = None


class RouteChoice(BaseModel):
    #: One of the request's option ids, or None when the answer named none of them.
    option_id: str | None = None
    valid: bool
    #: The model's answer as it came, for error messages and debugging.
    raw: str = ""
    reason: str = ""
    usage: TokenUsage = Field(default_factory=TokenUsage)
    parsed_with: Literal["structured", "fallback"] = "structured"
    attempt: int = 1


def llm_cache_key(call: LlmCall) -> str:
    """The result-cache key of `call`: what decides a model's answer (provider, model,
    prompt, parameters, output schema)."""
    content = call.model_dump(
        mode="json",
        include={
            "provider",
            "model",
            "system",
            "prompt",
            "messages",
            "max_tokens",
            "temperature",
            "output_schema",
        },
    )
    return cache_key(call.tenant, "llm", content)
