"""Streamed LLM answers: each chunk goes to the run's watchers as it comes, the whole answer to
the workflow at the end.

With `LlmCall.stream`, the provider is asked to stream (`stream: true`) and every chunk of
text is written to the run's live stream in Redis (`kernel.live`) as a `step.delta` event,
from the activity itself: the workflow's history never sees a chunk, only the final answer,
so a long answer costs the run one activity result, as before. The events of one call are
numbered (`index`) and carry the attempt that made them: a retried call streams again from
the start, and a watcher that sees a new `attempt` starts the step's text over.

Structured output streams too: the text (or, for Anthropic's forced tool, the JSON of its
input as it is written) goes out as it comes and is validated once the answer is whole.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from anthropic import NOT_GIVEN
from anthropic import AsyncStream as AnthropicStream
from anthropic.lib.streaming import AsyncMessageStream
from anthropic.types import Message, RawMessageStreamEvent
from openai import AsyncStream
from openai.types.chat import ChatCompletionChunk
from openai.types.completion_usage import CompletionUsage
from openai.types.responses import Response, ResponseStreamEvent
from redis.asyncio import Redis
from temporalio import activity

from kernel.live import LIVE_MAXLEN, LIVE_TTL_SECONDS, STEP_DELTA, live_stream_key


@dataclass
class LiveStep:
    """One call's live events, written to its run's Redis stream under its step's name.

    `redis` None (a worker without Redis) writes nothing: the call still answers.
    """

    redis: Redis | None
    workflow_id: str
    step_name: str
    attempt: int
    index: int = field(default=0)

    @classmethod
    def of_activity(cls, redis: Redis | None, step_name: str) -> LiveStep:
        info = activity.info()
        return cls(redis, info.workflow_id or "", step_name, info.attempt)

    async def send(self, event: str, data: dict[str, Any]) -> None:
        if self.redis is None:
            return
        entry = {
            "event": event,
            "step_name": self.step_name,
            "attempt": self.attempt,
            "timestamp": time.time(),
            **data,
        }
        key = live_stream_key(self.workflow_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"data": json.dumps(entry)}, maxlen=LIVE_MAXLEN, approximate=True)
            pipe.expire(key, LIVE_TTL_SECONDS)
            await pipe.execute()

    async def delta(self, text: str) -> None:
        """Send the next chunk of the answer."""
        if not text:
            return
        await self.send(STEP_DELTA, {"index": self.index, "delta": text})
        self.index += 1


@dataclass(frozen=True)
class ChatStreamed:
    text: str
    refusal: str
    finish_reason: str | None
    model: str | None
    usage: CompletionUsage | None


async def read_chat_stream(
    stream: AsyncStream[ChatCompletionChunk], live: LiveStep
) -> ChatStreamed:
    """A Chat Completions stream read to its end, its content sent as it comes."""
    text: list[str] = []
    refusal: list[str] = []
    finish_reason = model = None
    usage = None
    async for chunk in stream:
        model = chunk.model or model
        usage = chunk.usage or usage
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            if choice.delta.content:
                text.append(choice.delta.content)
                await live.delta(choice.delta.content)
            if choice.delta.refusal:
                refusal.append(choice.delta.refusal)
            finish_reason = choice.finish_reason or finish_reason
    return ChatStreamed("".join(text), "".join(refusal), finish_reason, model, usage)


async def read_responses_stream(
    stream: AsyncStream[ResponseStreamEvent], live: LiveStep
) -> Response | None:
    """A Responses stream read to its end, its output text sent as it comes; the final
    response (`response.completed`, or `.incomplete`), None if the stream ended without one."""
    final = None
    async for event in stream:
        if event.type == "response.output_text.delta":
            await live.delta(event.delta)
        elif event.type in ("response.completed", "response.incomplete", "response.failed"):
            final = event.response
    return final


async def read_messages_stream(
    stream: AnthropicStream[RawMessageStreamEvent], live: LiveStep
) -> Message:
    """An Anthropic Messages stream read to its end through the SDK's accumulator, its text
    (and a forced tool's input JSON) sent as it comes."""
    accumulated: AsyncMessageStream[Any] = AsyncMessageStream(stream, output_format=NOT_GIVEN)
    async for event in accumulated:
        if event.type == "text":
            await live.delta(event.text)
        elif event.type == "input_json":
            await live.delta(event.partial_json)
    return await accumulated.get_final_message()
