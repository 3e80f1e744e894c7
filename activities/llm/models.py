"""Inputs and outputs of the LLM activities (one model in, one out).

They travel through `pydantic_data_converter` and live in workflow histories, so every field
added later needs a default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

LlmProvider = Literal["openai", "anthropic"]


class LlmUsage(BaseModel):
    """Tokens billed for one or more calls; add them up with `+` or `plus()`."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def plus(self, other: LlmUsage) -> LlmUsage:
        return LlmUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )

    def __add__(self, other: LlmUsage) -> LlmUsage:
        return self.plus(other)


class LlmCall(BaseModel):
    """One prompt for one model: an LLM step or instruction."""

    provider: LlmProvider
    model: str
    system: str | None = None
    prompt: str
    #: None: the provider's default (OpenAI), or 1024 (Anthropic, which requires a value).
    max_tokens: int | None = None
    #: Who is calling, for error messages ("step 'summarise'", "instruction 3").
    label: str = ""


class LlmText(BaseModel):
    text: str
    usage: LlmUsage = Field(default_factory=LlmUsage)
    #: The model that answered, as the provider names it.
    model: str
    attempt: int = 1


class ConditionVerdictRequest(BaseModel):
    """Ask a model whether `expression` holds for a step's result."""

    provider: LlmProvider
    model: str
    expression: str
    result_text: str
    label: str = ""


class ConditionVerdict(BaseModel):
    verdict: bool
    reason: str = ""
    usage: LlmUsage = Field(default_factory=LlmUsage)
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


class RouteChoice(BaseModel):
    #: One of the request's option ids, or None when the answer named none of them.
    option_id: str | None = None
    valid: bool
    #: The model's answer as it came, for error messages and debugging.
    raw: str = ""
    reason: str = ""
    usage: LlmUsage = Field(default_factory=LlmUsage)
    parsed_with: Literal["structured", "fallback"] = "structured"
    attempt: int = 1
