"""The structured-output ladder: the cheapest way to a valid answer first.

A call with an `output_schema` climbs, rung by rung, until an answer validates:

    native        the provider's own structured output (asked for with the first request),
                  parsed and validated with `jsonschema`
    repaired      an answer that is not JSON, repaired by `json_repair` and validated again
                  (taken on any rung whose answer needs it)
    reprompt:N    the model asked again, N = 1 .. `repair_attempts`: the conversation, its
                  last answer as the assistant's turn and a user turn quoting every
                  validation error, so it corrects what it is told about
    InvalidModelOutput   non-retryable, naming the call and the last errors: the model was
                  asked and corrected already, and the same prompt would most likely fail alike

Each rung taken is recorded in order on the answer (`LlmText.ladder`) and counted
(`workflow_station_llm_ladder_rungs_total`). A re-prompt quotes only the latest answer, not
every earlier one: the errors say all the model needs, and the conversation stays the size
of the first request plus one exchange.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.llm.models import LlmMessage
from activities.llm.structured import Reading, read_structured
from kernel import errors
from kernel.errors import ErrorType
from kernel.metrics import count_ladder_rung


@dataclass(frozen=True)
class Reply:
    """A model's answer, as the ladder reads it."""

    text: str
    #: The arguments of Anthropic's forced tool call, when the answer came as one.
    data: dict[str, Any] | None = None

    def as_text(self) -> str:
        """The answer as the model said it, to quote back to it."""
        return self.text if self.text or self.data is None else json.dumps(self.data)


@dataclass(frozen=True)
class Climbed:
    """Where the ladder ended: a valid value, the answer that holds it, and the rungs taken."""

    value: Any
    reply: Reply
    ladder: list[str]


#: Asks the model again with these turns appended to the call's conversation.
AskAgain = Callable[[list[LlmMessage]], Awaitable[Reply]]


async def climb(
    first: Reply,
    schema: dict[str, Any],
    *,
    repair_attempts: int,
    label: str,
    ask_again: AskAgain,
) -> Climbed:
    """The first valid value on the ladder, from the answer to the first request up.

    Args:
        first: The answer to the request that asked for structured output.
        schema: The call's `output_schema`.
        repair_attempts: How many times the model may be asked to correct itself.
        label: Who asked, for the error message.
        ask_again: Sends a correction and returns the model's new answer.

    Raises:
        ApplicationError: `InvalidModelOutput`, once every rung failed.
    """
    ladder: list[str] = []
    reply = first
    reading = _take(ladder, "native", reply, schema)
    for attempt in range(1, repair_attempts + 1):
        if reading.valid:
            break
        reply = await ask_again(correction(reply, reading))
        reading = _take(ladder, f"reprompt:{attempt}", reply, schema)
    if not reading.valid:
        raise _invalid(label, ladder, reading.errors)
    return Climbed(reading.value, reply, ladder)


def correction(reply: Reply, reading: Reading) -> list[LlmMessage]:
    """The turns that ask for a corrected answer: the bad one, and what is wrong with it."""
    faults = "\n".join(f"- {error}" for error in reading.errors)
    return [
        LlmMessage(role="assistant", content=reply.as_text()),
        LlmMessage(
            role="user",
            content=(
                "Your answer does not follow the required JSON Schema:\n"
                f"{faults}\n"
                "Answer again with only the corrected JSON."
            ),
        ),
    ]


def _take(ladder: list[str], rung: str, reply: Reply, schema: dict[str, Any]) -> Reading:
    """Read `reply` on `rung`, recording and counting the rungs taken (repair among them)."""
    reading = read_structured(reply.text, reply.data, schema)
    ladder.append(rung)
    count_ladder_rung(rung.partition(":")[0], valid=reading.valid and not reading.repaired)
    if reading.repaired:
        ladder.append("repaired")
        count_ladder_rung("repaired", valid=reading.valid)
    return reading


def _invalid(label: str, ladder: list[str], last_errors: list[str]) -> ApplicationError:
    who = f"{label}: " if label else ""
    return errors.non_retryable(
        ErrorType.INVALID_MODEL_OUTPUT,
        f"{who}the model's answer does not match output_schema after {', '.join(ladder)}: "
        + "; ".join(last_errors),
        {"ladder": ladder, "errors": last_errors},
    )
