"""LLM activities: one request to OpenAI or Anthropic per activity attempt.

The SDK clients are built once by `build_llm_clients` in the worker (the composition root) with
`max_retries=0`: Temporal's retry policy is the only retry loop, so a 429 is not retried twice
over and every attempt shows in the workflow history. Failures become `ApplicationError`s
classified by `kernel.errors` (the one taxonomy): `LlmProviderError` and
`LlmUnparseableAnswer` are retried, `LlmRequestRejected` and `ProviderNotConfigured` are not.
A call in flight heartbeats, so a cancelled run stops it and a lost worker's call is retried
after the heartbeat timeout rather than the whole step timeout.

Around the one request, within the attempt: an unavailable model hands the call to the next of
its fallback chain (`activities.llm.fallback`), and an answer that breaks its `output_schema`
climbs the repair ladder (`activities.llm.ladder`).
Each provider call first waits for its slot in the rate-limit schedule shared by every worker
(`activities.llm.pacing`, `activities.llm.ratelimit`), and, asked to stream, sends its chunks
to the run's watchers as they come (`activities.llm.streaming`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Literal, cast

import anthropic
import openai
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion
from redis.asyncio import Redis
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import heartbeating, retry_delay_ceiling
from activities.llm.billing import Billing
from activities.llm.fallback import Answered, first_available
from activities.llm.ladder import Reply, climb
from activities.llm.models import (
    CALL_LLM,
    CHOOSE_ROUTE,
    JUDGE_CONDITION,
    ConditionVerdictRequest,
    LlmCall,
    LlmMessage,
    LlmProvider,
    LlmText,
    LlmVerdict,
    ModelRef,
    RouteChoice,
    RouteRequest,
    TokenUsage,
    fallback_chain,
    llm_cache_key,
)
from activities.llm.pacing import Call, paced
from activities.llm.ratelimit import RateLimiter
from activities.llm.streaming import (
    LiveStep,
    read_chat_stream,
    read_messages_stream,
    read_responses_stream,
)
from activities.pricing.table import load_prices
from activities.store.cache import keep_answer, read_answer
from kernel import errors
from kernel.answers import json_object, match_option, yes_no
from kernel.errors import ErrorType
from kernel.metrics import count_llm_tokens

#: Sent as the key to OpenAI-compatible local servers (Ollama, vLLM…) that need none; the SDKs
#: refuse to build a client without one.
PLACEHOLDER_API_KEY = "not-needed"
#: What a call may generate when it names no `max_tokens` (LLM_MAX_TOKENS): every call is
#: bounded, so no single answer can run up an unbounded bill.
DEFAULT_MAX_TOKENS = 4096
#: A verdict or a route is a short JSON object; this bounds what a chatty model can bill.
JUDGE_MAX_TOKENS = 512
#: Connecting is quick or the host is unreachable; fail fast so Temporal retries soon.
CONNECT_TIMEOUT_SECONDS = 10.0
#: The longest Retry-After of a 429 waited out on the same model before its fallback is asked
#: (LLM_FALLBACK_MAX_WAIT_SECONDS).
DEFAULT_FALLBACK_MAX_WAIT = timedelta(seconds=2)

_PROVIDER_NAMES: dict[str, str] = {"openai": "OpenAI", "anthropic": "Anthropic"}
_PROVIDER_ENV: dict[str, tuple[str, str]] = {
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL"),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
}

_VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"type": "boolean", "description": "true if the condition holds"},
        "reason": {"type": "string", "description": "one short sentence"},
    },
    "required": ["verdict", "reason"],
    "additionalProperties": False,
}

_JUDGE_SYSTEM = (
    "You evaluate a condition against the result of a workflow step. Decide strictly whether "
    'the condition holds. Reply only with a JSON object: {"verdict": true or false, "reason": '
    '"<one short sentence>"}.'
)
_ROUTE_SYSTEM = (
    "You choose which branch a workflow takes next. Pick exactly one of the listed options. "
    'Reply only with a JSON object: {"option_id": "<the id of the option>", "reason": '
    '"<one short sentence>"}.'
)


def build_llm_clients(
    *,
    openai_api_key: str | None,
    openai_base_url: str | None,
    anthropic_api_key: str | None,
    anthropic_base_url: str | None,
    request_timeout_seconds: float = 300.0,
) -> tuple[AsyncOpenAI | None, AsyncAnthropic | None]:
    """The SDK clients for `LlmActivities`; None for a provider with neither key nor base URL.

    `request_timeout_seconds` bounds one request, so a stalled connection surfaces as a
    retryable timeout; the activity's start-to-close timeout still bounds the attempt.
    """
    timeout = openai.Timeout(request_timeout_seconds, connect=CONNECT_TIMEOUT_SECONDS)
    openai_client = None
    if openai_api_key or openai_base_url:
        openai_client = AsyncOpenAI(
            api_key=openai_api_key or PLACEHOLDER_API_KEY,
            base_url=openai_base_url or None,
            timeout=timeout,
            max_retries=0,
        )
    anthropic_client = None
    if anthropic_api_key or anthropic_base_url:
        anthropic_client = AsyncAnthropic(
            api_key=anthropic_api_key or PLACEHOLDER_API_KEY,
            base_url=anthropic_base_url or None,
            timeout=anthropic.Timeout(request_timeout_seconds, connect=CONNECT_TIMEOUT_SECONDS),
            max_retries=0,
        )
    return openai_client, anthropic_client


@dataclass(frozen=True)
class _JsonSchema:
    name: str
    schema: dict[str, Any]
    #: OpenAI's strict mode, for our own schemas; a user's `output_schema` need not meet its
    #: rules (every property required, no extra keys), so it is followed, then validated.
    strict: bool = True


@dataclass(frozen=True)
class _Prompt:
    """One request to a model, whichever provider answers it."""

    provider: LlmProvider
    model: str
    system: str | None
    text: str
    label: str
    max_tokens: int | None = None
    schema: _JsonSchema | None = None
    #: The whole conversation, instead of `text` as the one user message.
    messages: tuple[LlmMessage, ...] | None = None
    temperature: float | None = None
    #: Whose run asks, for its daily budget and the cost metric (None: the open gateway's).
    tenant: str | None = None
    #: Stream the answer to the run's watchers under this step name (`LlmCall.stream`).
    stream: bool = False
    step_name: str = ""
    #: The SDK's request timeout, once sent; None: the client's.
    timeout_seconds: float | None = None

    def turns(self) -> list[dict[str, str]]:
        """The conversation after the system prompt, as both APIs take it."""
        if self.messages is None:
            return [{"role": "user", "content": self.text}]
        return [{"role": m.role, "content": m.content} for m in self.messages]


@dataclass(frozen=True)
class _Completion:
    text: str
    usage: TokenUsage
    model: str
    finish_reason: str | None = None
    #: The arguments of a forced tool call (Anthropic structured output), when there was one.
    data: dict[str, Any] | None = None
    rate_limit_wait_seconds: float = 0.0


def _refused(provider: str, model: str, label: str, reason: str) -> ApplicationError:
    # The same prompt would be refused again: failing at once saves the retries.
    return errors.non_retryable(
        ErrorType.LLM_REQUEST_REJECTED,
        f"{_who(label)}the model refused: {reason}",
        {"provider": provider, "model": model},
    )


def _usage(input_tokens: int, output_tokens: int) -> TokenUsage:
    return TokenUsage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )


def _who(label: str) -> str:
    return f"{label}: " if label else ""


def _api_message(body: object) -> str | None:
    """`error.message` from either provider's error body."""
    if not isinstance(body, dict):
        return None
    inner = body.get("error")
    source = inner if isinstance(inner, dict) else body
    message = source.get("message")
    return message if isinstance(message, str) else None


def _status_error(
    provider: LlmProvider, label: str, exc: openai.APIStatusError | anthropic.APIStatusError
) -> ApplicationError:
    status = exc.status_code
    detail = _api_message(exc.body) or exc.message
    return errors.llm_status_error(
        status,
        f"{_who(label)}{_PROVIDER_NAMES[provider]} API returned {status}: {detail}",
        headers=exc.response.headers,
        details={"provider": provider, "status": status, "request_id": exc.request_id},
        retry_ceiling=retry_delay_ceiling(),
    )


def _connection_error(
    provider: LlmProvider, label: str, exc: openai.APIConnectionError | anthropic.APIConnectionError
) -> ApplicationError:
    timed_out = isinstance(exc, openai.APITimeoutError | anthropic.APITimeoutError)
    what = "timed out" if timed_out else f"could not be reached ({exc.__cause__ or exc})"
    return errors.llm_unavailable(
        f"{_who(label)}{_PROVIDER_NAMES[provider]} API {what}",
        {"provider": provider, "timeout": timed_out},
    )


def _route_schema(ids: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "option_id": {"type": "string", "enum": ids, "description": "the chosen option's id"},
            "reason": {"type": "string", "description": "one short sentence"},
        },
        "required": ["option_id", "reason"],
        "additionalProperties": False,
    }


def _route_prompt(request: RouteRequest) -> str:
    parts = [request.description, request.evaluation_prompt]
    if request.previous_result:
        parts.append(f"Previous result:\n{request.previous_result}")
    lines = []
    for option in request.options:
        line = f"- id: {option.id}"
        if option.name:
            line += f" | name: {option.name}"
        if option.description:
            line += f" | {option.description}"
        lines.append(line)
    parts.append("Options:\n" + "\n".join(lines))
    parts.append("Answer with the id of exactly one option.")
    return "\n\n".join(part for part in parts if part)


class LlmActivities:
    """Activities that prompt a model: free text, a condition verdict, a routing choice."""

    def __init__(
        self,
        *,
        openai: AsyncOpenAI | None,
        anthropic: AsyncAnthropic | None,
        openai_api: Literal["chat", "responses"] = "chat",
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        redis: Redis | None = None,
        fallback_chain: Sequence[ModelRef] = (),
        fallback_max_wait: timedelta = DEFAULT_FALLBACK_MAX_WAIT,
        billing: Billing | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self._redis = redis
        self._fallback_chain = tuple(fallback_chain)
        self._fallback_max_wait = fallback_max_wait
        self._billing = billing or Billing(load_prices())
        self._rate_limiter = rate_limiter
        self._openai = openai
        self._anthropic = anthropic
        self._openai_api = openai_api
        self._default_max_tokens = default_max_tokens

    @activity.defn(name=CALL_LLM)
    async def call_llm(self, call: LlmCall) -> LlmText:
        """Send one prompt and return the model's text and token usage; with an
        `output_schema`, ask for structured output and return the validated value too.
        With `call.cache`, an answer to the same prompt within its TTL is returned instead."""
        redis = self._redis if call.cache is not None else None
        if redis is None:
            return await self._answer(call)
        assert call.cache is not None
        key = llm_cache_key(call)
        cached = await read_answer(redis, key, call.label)
        if cached is not None:
            return LlmText.model_validate(
                {
                    **cached.value,
                    "usage": TokenUsage(),
                    "saved_usage": cached.value.get("usage"),
                    "attempt": activity.info().attempt,
                    "cached": True,
                    "cache_age_seconds": cached.age_seconds,
                }
            )
        answer = await self._answer(call)
        await keep_answer(
            redis, key, answer.model_dump(mode="json"), call.cache.ttl_seconds, call.label
        )
        return answer

    async def _answer(self, call: LlmCall) -> LlmText:
        schema = call.output_schema
        prompt = _Prompt(
            call.provider,
            call.model,
            call.system,
            call.prompt,
            call.label,
            max_tokens=call.max_tokens,
            schema=_JsonSchema("output", schema, strict=False) if schema is not None else None,
            messages=tuple(call.messages) if call.messages is not None else None,
            temperature=call.temperature,
            tenant=call.tenant,
            stream=call.stream,
            step_name=call.step_name,
            timeout_seconds=call.timeout_seconds,
        )
        answered = await self._first_available(prompt, call.fallback)
        completion, usage = answered.value, answered.value.usage
        text, json_value, ladder = completion.text, None, []
        if schema is not None:
            conversation = prompt.messages or (LlmMessage(role="user", content=prompt.text),)

            async def ask_again(correction: list[LlmMessage]) -> Reply:
                nonlocal completion, usage
                completion = await self._complete(
                    replace(
                        prompt,
                        provider=answered.model.provider,
                        model=answered.model.model,
                        messages=(*conversation, *correction),
                    )
                )
                usage += completion.usage
                return Reply(completion.text, completion.data)

            climbed = await climb(
                Reply(completion.text, completion.data),
                schema,
                repair_attempts=call.repair_attempts,
                label=call.label,
                ask_again=ask_again,
            )
            json_value, ladder = climbed.value, climbed.ladder
            text = climbed.reply.text or json.dumps(json_value)
        return LlmText(
            text=text,
            usage=usage,
            model=completion.model,
            attempt=activity.info().attempt,
            finish_reason=completion.finish_reason,
            json_value=json_value,
            provider=answered.model.provider,
            requested_model=call.model,
            fallback=answered.hops,
            ladder=ladder,
            rate_limit_wait_seconds=completion.rate_limit_wait_seconds,
        )

    async def _first_available(
        self, prompt: _Prompt, fallback: list[ModelRef] | Literal[False] | None = None
    ) -> Answered[_Completion]:
        """`prompt` answered by its model or, while that is unavailable, by the next of its
        fallback chain (`activities.llm.fallback`)."""
        return await first_available(
            ModelRef(provider=prompt.provider, model=prompt.model),
            fallback_chain(fallback, self._fallback_chain),
            lambda model: self._complete(
                replace(prompt, provider=model.provider, model=model.model)
            ),
            max_wait=self._fallback_max_wait,
        )

    @activity.defn(name=JUDGE_CONDITION)
    async def judge_condition(self, request: ConditionVerdictRequest) -> LlmVerdict:
        """Ask whether a condition holds for a result; strictly true or false.

        Asks for structured output; a reply that ignores it is read for true/false/yes/no.
        """
        completion = await self._complete_with_fallback(
            _Prompt(
                request.provider,
                request.model,
                _JUDGE_SYSTEM,
                f"Condition:\n{request.expression}\n\nResult:\n{request.result_text}",
                request.label,
                max_tokens=JUDGE_MAX_TOKENS,
                schema=_JsonSchema("condition_verdict", _VERDICT_SCHEMA),
                tenant=request.tenant,
            )
        )
        attempt = activity.info().attempt
        data = completion.data if completion.data is not None else json_object(completion.text)
        if data is not None and isinstance(data.get("verdict"), bool):
            return LlmVerdict(
                verdict=data["verdict"],
                reason=str(data.get("reason", "")),
                usage=completion.usage,
                parsed_with="structured",
                attempt=attempt,
            )
        texts = [completion.text]
        if data is not None and isinstance(data.get("verdict"), str):
            texts.insert(0, data["verdict"])
        verdict = next((v for text in texts if (v := yes_no(text)) is not None), None)
        if verdict is None:
            raise errors.llm_unparseable(
                f"{_who(request.label)}the model's answer to the condition "
                f"{request.expression!r} is neither true nor false: {completion.text[:300]!r}",
                {"provider": request.provider, "model": request.model},
            )
        return LlmVerdict(
            verdict=verdict,
            reason=completion.text.strip()[:500],
            usage=completion.usage,
            parsed_with="fallback",
            attempt=attempt,
        )

    @activity.defn(name=CHOOSE_ROUTE)
    async def choose_route(self, request: RouteRequest) -> RouteChoice:
        """Ask the model to pick one option id; an answer naming none is `valid=False`."""
        attempt = activity.info().attempt
        ids = [option.id for option in request.options]
        if not ids:
            return RouteChoice(valid=False, reason="no options to choose from", attempt=attempt)
        completion = await self._complete_with_fallback(
            _Prompt(
                request.provider,
                request.model,
                _ROUTE_SYSTEM,
                _route_prompt(request),
                request.label,
                max_tokens=JUDGE_MAX_TOKENS,
                schema=_JsonSchema("route_choice", _route_schema(ids)),
                tenant=request.tenant,
            )
        )
        data = completion.data if completion.data is not None else json_object(completion.text)
        if data is not None and isinstance(data.get("option_id"), str):
            chosen: str | None = data["option_id"]
            reason = str(data.get("reason", ""))
            parsed_with: Literal["structured", "fallback"] = "structured"
        else:
            matched = match_option(completion.text, request.options)
            chosen = matched.id if matched is not None else None
            reason = ""
            parsed_with = "fallback"
        raw = json.dumps(completion.data) if completion.data is not None else completion.text
        valid = chosen in ids
        return RouteChoice(
            option_id=chosen if valid else None,
            valid=valid,
            raw=raw,
            reason=reason,
            usage=completion.usage,
            parsed_with=parsed_with,
            attempt=attempt,
        )

    async def _complete_with_fallback(self, prompt: _Prompt) -> _Completion:
        """A verdict's or a route's prompt, moved along the operator's fallback chain."""
        return (await self._first_available(prompt)).value

    async def _complete(self, prompt: _Prompt) -> _Completion:
        """Send `prompt` to its provider, heartbeating while the model answers, and count the
        tokens it spent and what they cost; a tenant past its daily budget asks nothing."""
        await self._billing.admit(prompt.tenant, prompt.label)
        completion = await self._request(prompt)
        usage = completion.usage
        count_llm_tokens(prompt.provider, completion.model, usage.input_tokens, usage.output_tokens)
        priced = await self._billing.charge(prompt.tenant, prompt.provider, completion.model, usage)
        return replace(completion, usage=priced)

    async def _request(self, prompt: _Prompt) -> _Completion:
        provider, label = prompt.provider, prompt.label
        try:
            if provider == "openai":
                if self._openai is None:
                    raise self._not_configured(provider, label)
                if self._openai_api == "responses":
                    return await heartbeating(self._openai_responses(self._openai, prompt))
                return await heartbeating(self._openai_chat(self._openai, prompt))
            if self._anthropic is None:
                raise self._not_configured(provider, label)
            return await heartbeating(self._anthropic_messages(self._anthropic, prompt))
        except (openai.APIStatusError, anthropic.APIStatusError) as exc:
            raise _status_error(provider, label, exc) from exc
        except (openai.APIConnectionError, anthropic.APIConnectionError) as exc:
            raise _connection_error(provider, label, exc) from exc

    @staticmethod
    def _not_configured(provider: LlmProvider, label: str) -> ApplicationError:
        key_var, url_var = _PROVIDER_ENV[provider]
        return errors.non_retryable(
            ErrorType.PROVIDER_NOT_CONFIGURED,
            f"{_who(label)}{_PROVIDER_NAMES[provider]} is not configured on this worker: set "
            f"{key_var}, or {url_var} for a compatible local server, in the worker's "
            "environment and restart it",
            {"provider": provider, "env": [key_var, url_var]},
        )

    def _live(self, prompt: _Prompt) -> LiveStep:
        """Where the call tells the run's watchers what it does: its chunks when it streams,
        its wait when it waits for a rate-limit slot; nowhere when it can do neither."""
        return LiveStep.of_activity(
            self._redis if prompt.stream or self._rate_limiter else None,
            prompt.step_name or prompt.label,
        )

    def _limited(self, prompt: _Prompt, api_key: str | None) -> Call:
        """What the rate limiter weighs the call by, before it is sent."""
        chars = len(prompt.system or "") + sum(len(turn["content"]) for turn in prompt.turns())
        return Call(
            prompt.provider,
            prompt.model,
            api_key,
            chars,
            prompt.max_tokens or self._default_max_tokens,
            prompt.label,
        )

    def _timeout(self, prompt: _Prompt) -> float | openai.NotGiven:
        return openai.NOT_GIVEN if prompt.timeout_seconds is None else prompt.timeout_seconds

    async def _openai_chat(self, client: AsyncOpenAI, prompt: _Prompt) -> _Completion:
        messages: list[Any] = []
        if prompt.system:
            messages.append({"role": "system", "content": prompt.system})
        messages.extend(prompt.turns())
        live = self._live(prompt)
        raw, waited = await paced(
            self._rate_limiter,
            live,
            self._limited(prompt, client.api_key),
            lambda: client.chat.completions.with_raw_response.create(
                model=prompt.model,
                messages=messages,
                max_completion_tokens=prompt.max_tokens or self._default_max_tokens,
                temperature=openai.omit if prompt.temperature is None else prompt.temperature,
                response_format=(
                    {
                        "type": "json_schema",
                        "json_schema": {
                            "name": prompt.schema.name,
                            "schema": prompt.schema.schema,
                            "strict": prompt.schema.strict,
                        },
                    }
                    if prompt.schema is not None
                    else openai.omit
                ),
                stream=prompt.stream,
                stream_options={"include_usage": True} if prompt.stream else openai.omit,
                timeout=self._timeout(prompt),
            ),
        )
        if prompt.stream:
            streamed = await read_chat_stream(raw.parse(), live)  # type: ignore[arg-type]
            if not streamed.text and streamed.refusal:
                raise _refused("openai", prompt.model, prompt.label, streamed.refusal)
            usage = streamed.usage
            return _Completion(
                text=streamed.text,
                usage=_usage(usage.prompt_tokens, usage.completion_tokens)
                if usage
                else TokenUsage(),
                model=streamed.model or prompt.model,
                finish_reason=streamed.finish_reason,
                rate_limit_wait_seconds=waited,
            )
        response = cast(ChatCompletion, raw.parse())
        if not response.choices:
            raise errors.llm_unavailable(
                f"{_who(prompt.label)}OpenAI returned no choices", {"provider": "openai"}
            )
        message = response.choices[0].message
        if message.content is None and message.refusal:
            raise _refused("openai", prompt.model, prompt.label, message.refusal)
        usage = response.usage
        return _Completion(
            text=message.content or "",
            usage=_usage(usage.prompt_tokens, usage.completion_tokens) if usage else TokenUsage(),
            model=response.model or prompt.model,
            finish_reason=response.choices[0].finish_reason,
            rate_limit_wait_seconds=waited,
        )

    async def _openai_responses(self, client: AsyncOpenAI, prompt: _Prompt) -> _Completion:
        live = self._live(prompt)
        raw, waited = await paced(
            self._rate_limiter,
            live,
            self._limited(prompt, client.api_key),
            lambda: client.responses.with_raw_response.create(
                model=prompt.model,
                input=prompt.text if prompt.messages is None else cast(Any, prompt.turns()),
                instructions=prompt.system if prompt.system else openai.omit,
                max_output_tokens=prompt.max_tokens or self._default_max_tokens,
                temperature=openai.omit if prompt.temperature is None else prompt.temperature,
                text=(
                    {
                        "format": {
                            "type": "json_schema",
                            "name": prompt.schema.name,
                            "schema": prompt.schema.schema,
                            "strict": prompt.schema.strict,
                        }
                    }
                    if prompt.schema is not None
                    else openai.omit
                ),
                # Nothing chains on `previous_response_id`, so there is no reason to keep the
                # conversation on OpenAI's side.
                store=False,
                stream=prompt.stream,
                timeout=self._timeout(prompt),
            ),
        )
        if prompt.stream:
            final = await read_responses_stream(raw.parse(), live)  # type: ignore[arg-type]
            if final is None:
                raise errors.llm_unavailable(
                    f"{_who(prompt.label)}OpenAI's stream ended without a response",
                    {"provider": "openai"},
                )
            response = final
        else:
            response = raw.parse()  # type: ignore[assignment]
        refusals = [
            part.refusal
            for item in response.output
            if item.type == "message"
            for part in item.content
            if part.type == "refusal"
        ]
        if refusals and not response.output_text:
            raise _refused("openai", prompt.model, prompt.label, " ".join(refusals))
        usage = response.usage
        return _Completion(
            text=response.output_text,
            usage=_usage(usage.input_tokens, usage.output_tokens) if usage else TokenUsage(),
            model=str(response.model or prompt.model),
            finish_reason=str(response.status) if response.status else None,
            rate_limit_wait_seconds=waited,
        )

    async def _anthropic_messages(self, client: AsyncAnthropic, prompt: _Prompt) -> _Completion:
        # A forced tool rather than `output_config.format`: every Claude model supports it.
        tools: Any = anthropic.omit
        tool_choice: Any = anthropic.omit
        if prompt.schema is not None:
            tools = [
                {
                    "name": prompt.schema.name,
                    "description": "Record your answer.",
                    "input_schema": prompt.schema.schema,
                }
            ]
            tool_choice = {"type": "tool", "name": prompt.schema.name}
        # Anthropic takes the system prompt apart from the turns.
        turns = prompt.turns()
        system = "\n\n".join(
            [*([prompt.system] if prompt.system else [])]
            + [turn["content"] for turn in turns if turn["role"] == "system"]
        )
        live = self._live(prompt)
        raw, waited = await paced(
            self._rate_limiter,
            live,
            self._limited(prompt, client.api_key),
            lambda: client.messages.with_raw_response.create(
                model=prompt.model,
                max_tokens=prompt.max_tokens or self._default_max_tokens,
                system=system or anthropic.omit,
                messages=cast(Any, [turn for turn in turns if turn["role"] != "system"]),
                tools=tools,
                tool_choice=tool_choice,
                # Not a typed argument of every SDK release; the API takes it.
                extra_body=(
                    None if prompt.temperature is None else {"temperature": prompt.temperature}
                ),
                stream=prompt.stream,
                timeout=anthropic.NOT_GIVEN
                if prompt.timeout_seconds is None
                else prompt.timeout_seconds,
            ),
        )
        if prompt.stream:
            message = await read_messages_stream(await raw.parse(), live)  # type: ignore[arg-type]
        else:
            message = await raw.parse()  # type: ignore[assignment]
        if message.stop_reason == "refusal":
            raise _refused("anthropic", prompt.model, prompt.label, "stop_reason: refusal")
        text = "".join(block.text for block in message.content if block.type == "text")
        data = next(
            (
                dict(block.input)
                for block in message.content
                if block.type == "tool_use"
                and prompt.schema is not None
                and block.name == prompt.schema.name
            ),
            None,
        )
        usage = message.usage
        return _Completion(
            text=text,
            usage=_usage(usage.input_tokens, usage.output_tokens),
            model=str(message.model or prompt.model),
            data=data,
            finish_reason=message.stop_reason,
            rate_limit_wait_seconds=waited,
        )
