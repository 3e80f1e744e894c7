"""What `llm`, `instructions` and `approval` steps send and what they give back: pure, no
Temporal.

An `llm` step is one `CALL_LLM` activity, the instruction runner's own (same retry classes,
redaction and token metrics). An `instructions` step is a child `InstructionWorkflow`, started
by name with its input as JSON (the engines do not import each other); the gateway validated
the body against the instruction model at submission. An `approval` step asks a person
(`workflows.shared.approvals`); its message is rendered here, and a decision that is no approval
fails it here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from activities.llm.models import LlmCall, LlmMessage, LlmText, ModelRef
from kernel.errors import ErrorType
from workflows.dag.graph import CHILD_ROOTS
from workflows.dag.models import StepConfig, StepState, Usage
from workflows.shared.approval_wait import decision_outcome
from workflows.shared.approvals import ApprovalStep
from workflows.shared.execution import ExecutionMode
from workflows.shared.failures import StepFailed
from workflows.shared.templating import Renderer, TemplateError

#: The child run's workflow type, as the worker registers it.
INSTRUCTION_WORKFLOW = "InstructionWorkflow"


def step_label(step: StepConfig) -> str:
    return f"step {step.step_name!r}"


def build_llm_call(
    step: StepConfig, variables: Mapping[str, Any], *, max_request_chars: int | None
) -> LlmCall:
    """An `llm` step's call, its templates rendered against `variables`.

    Raises:
        StepFailed: a template cannot be rendered, or renders to something not text.
    """
    label = step_label(step)
    llm = step.llm
    if llm is None:  # only a run started around the gateway's validation gets here
        raise StepFailed.of(ErrorType.INVALID_PIPELINE, f"{label}: an llm step needs `llm`")
    renderer = Renderer(variables, max_chars=max_request_chars)
    try:
        model = _text(renderer.render(llm.model))
        system = _text(renderer.render(llm.system)) if llm.system is not None else None
        prompt = _text(renderer.render(llm.prompt)) if llm.prompt is not None else ""
        messages = (
            [
                LlmMessage(role=m.role, content=_text(renderer.render(m.content)))
                for m in llm.messages
            ]
            if llm.messages is not None
            else None
        )
    except TemplateError as exc:
        raise StepFailed.of(exc.error_type, f"{label}: {exc}") from exc
    return LlmCall(
        provider=llm.provider,
        model=model,
        system=system,
        prompt=prompt,
        messages=messages,
        max_tokens=llm.max_tokens,
        temperature=llm.temperature,
        output_schema=llm.output_schema,
        label=label,
        fallback=(
            llm.fallback
            if llm.fallback is None or llm.fallback is False
            else [ModelRef(provider=m.provider, model=m.model) for m in llm.fallback]
        ),
        repair_attempts=llm.repair_attempts,
        stream=llm.stream,
        step_name=step.step_name,
    )


def _text(value: Any) -> str:
    """A rendered prompt part: a value placed alone in a template keeps its type, and a
    model reads text, so anything else is sent as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def llm_result(call: LlmCall, answer: LlmText) -> dict[str, Any]:
    """An `llm` step's result, as later steps read it (`{{<step>_result.json.label}}`)."""
    return {
        "text": answer.text,
        "json": answer.json_value,
        "provider": answer.provider or call.provider,
        "model": answer.model,
        "usage": {
            "input_tokens": answer.usage.input_tokens,
            "output_tokens": answer.usage.output_tokens,
        },
        "finish_reason": answer.finish_reason,
        "requested_model": answer.requested_model,
        "fallback": [hop.model_dump() for hop in answer.fallback],
        "ladder": answer.ladder,
        "cost_usd": answer.usage.cost_usd,
        "rate_limit_wait_seconds": answer.rate_limit_wait_seconds,
    }


def show_answer(state: StepState, answer: LlmText) -> None:
    """Who answered an `llm` step, shown on its status: the model (a fallback's, maybe), what
    it moved off and why, and the ladder's rungs."""
    state.model = answer.model
    state.provider = answer.provider or state.provider
    state.requested_model = answer.requested_model
    state.fallback = answer.fallback
    state.ladder = answer.ladder


def build_child_run(
    step: StepConfig,
    variables: Mapping[str, Any],
    *,
    max_request_chars: int | None,
    engine: dict[str, Any],
    execution_mode: ExecutionMode,
) -> dict[str, Any]:
    """The child instruction run's input: the step's body rendered, and the operator's
    options the gateway stamped on the DAG run (the body's `executionMode`, else the DAG
    run's mode; the step's own `timeout`, when set, as the child's run timeout: a child run
    is not retried whole, its LLM and endpoint calls retry on their own).

    Raises:
        StepFailed: a template cannot be rendered.
    """
    renderer = Renderer(variables, max_chars=max_request_chars, kept_roots=CHILD_ROOTS)
    try:
        body = renderer.render(step.instructions or {})
    except TemplateError as exc:
        raise StepFailed.of(exc.error_type, f"{step_label(step)}: {exc}") from exc
    if not isinstance(body.get("context"), str):
        body["context"] = _text(body.get("context", ""))
    options = {
        **engine,
        "execution_mode": body.get("executionMode") or body.get("execution_mode") or execution_mode,
    }
    if step.timeout is not None:
        options["run_timeout_seconds"] = step.timeout
    return {**body, "engine": options}


def child_usage(status: Any) -> Usage:
    """The tokens a child instruction run's final status says it billed, and their cost."""
    usage = status.get("usage") if isinstance(status, dict) else None
    if not isinstance(usage, dict):
        return Usage()
    return Usage(
        input_tokens=int(usage.get("inputTokens") or 0),
        output_tokens=int(usage.get("outputTokens") or 0),
        cost_usd=usage.get("costUsd"),
        by_model=usage.get("byModel") or {},
        unpriced_models=usage.get("unpricedModels") or [],
    )


def spent(usage: Usage | None) -> dict[str, Any]:
    """An event's `usage` (tokens and cost), for a step or run that called a model; nothing
    for one that did not, so HTTP-only pipelines' events stay as they were."""
    if usage is None or usage == Usage():
        return {}
    return {"usage": usage.model_dump(mode="json")}


def answer_usage(answer: LlmText) -> Usage:
    """What an `llm` step's answer billed, as the step and the run count it."""
    usage = answer.usage
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=usage.cost_usd,
        by_model=usage.by_model,
        unpriced_models=usage.unpriced_models,
    )


def approval_of(step: StepConfig) -> ApprovalStep:
    """An `approval` step's wait.

    Raises:
        StepFailed: the step has none (only a run started around the gateway's validation).
    """
    if step.approval is None:
        raise StepFailed.of(
            ErrorType.INVALID_PIPELINE, f"{step_label(step)}: an approval step needs `approval`"
        )
    return step.approval


def approval_message(
    approval: ApprovalStep, step: StepConfig, variables: Mapping[str, Any], *, max_chars: int | None
) -> str:
    """The question an approval step puts, rendered against `variables`.

    Raises:
        StepFailed: the template cannot be rendered.
    """
    try:
        return _text(Renderer(variables, max_chars=max_chars).render(approval.message))
    except TemplateError as exc:
        raise StepFailed.of(exc.error_type, f"{step_label(step)}: {exc}") from exc


def approved_result(step: StepConfig, decision: dict[str, Any], *, timed_out: bool) -> Any:
    """An approval step's result once decided: the decision, if it approves.

    Raises:
        StepFailed: rejected (`Rejected`), or timed out with `on_timeout: fail`.
    """
    return decision_outcome(
        approval_of(step), decision, timed_out=timed_out, label=step_label(step)
    )
