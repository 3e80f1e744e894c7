"""A run whose input cannot be decoded fails at once with a named error, instead of its
workflow task failing on every retry until the run's deadline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from kernel.limits import MAX_JSON_DEPTH
from settings.converter import DATA_CONVERTER
from tests.conftest import Engine, Targets, unique
from workflows.dag.models import DagRunInput, PipelineRequest
from workflows.instructions.models import InstructionRunInput, InstructionRunRequest
from workflows.shared.outbox import WebhookOutboxWorkflow
from workflows.shared.webhooks import ENQUEUE_SIGNAL, EventBatch, OutboxInput


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_an_input_nested_past_the_parsers_limit_fails_the_run_by_name(
    engine: Engine,
) -> None:
    # What the gateway refuses (tests/e2e/test_hostile_input.py) but a client of Temporal's
    # own could still start: JSON that encodes, yet does not decode, 220 levels deep.
    raw = {
        "workflow_id": unique("deep"),
        "STEPS_CONFIG": [
            {
                "step_name": "a",
                "usid": "u1",
                "service_url": "https://example.com/a",
                "input_prep_config": {"extra": nested(220)},
            }
        ],
    }
    handle = await engine.client.start_workflow(
        "DagWorkflow",
        raw,
        id=raw["workflow_id"],
        task_queue=engine.settings.task_queue,
        execution_timeout=timedelta(hours=6),
    )
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "PayloadUndecodable"
    assert "DagRunInput" in cause.message
    # Failed on its first workflow task, not retried.
    events = [event async for event in handle.fetch_history_events()]
    assert sum(event.HasField("workflow_task_failed_event_attributes") for event in events) == 0


async def test_the_deepest_pipeline_the_gateway_accepts_decodes_in_the_worker() -> None:
    deepest = nested(MAX_JSON_DEPTH - 1)
    request = PipelineRequest.model_validate(
        {
            "workflow_id": "w",
            "input_data": {"v": deepest},
            "STEPS_CONFIG": [
                {
                    "step_name": "a",
                    "usid": "u1",
                    "service_url": "https://example.com/a",
                    "headers": {"h": deepest},
                    "input_prep_config": {
                        "body": deepest,
                        "query": {"q": deepest},
                        "headers": {"h": deepest},
                    },
                }
            ],
        }
    )
    run = DagRunInput(**dict(request))
    payloads = await DATA_CONVERTER.encode([run])
    [decoded] = await DATA_CONVERTER.decode(payloads, [DagRunInput])
    assert decoded == run


async def test_the_deepest_instruction_run_the_gateway_accepts_decodes_in_the_worker() -> None:
    request = InstructionRunRequest.model_validate(
        {
            "context": "c",
            "instructions": [
                {"type": "endpoint", "apiUrl": "https://example.com/a", "body": nested(63)}
            ],
        }
    )
    run = InstructionRunInput(**dict(request))
    payloads = await DATA_CONVERTER.encode([run])
    [decoded] = await DATA_CONVERTER.decode(payloads, [InstructionRunInput])
    assert decoded == run


async def test_a_signal_nested_past_the_parsers_limit_does_not_wedge_the_run(
    dev_engine: Engine, targets: Targets
) -> None:
    # The SDK drops a signal it cannot decode (logged, never retried), so the run goes on.
    run = unique("run")
    handle = await dev_engine.client.start_workflow(
        WebhookOutboxWorkflow.run,
        OutboxInput(url=f"{targets.url}/hooks/{unique('hook')}", workflow_id=run),
        id=f"{run}/webhooks/x",
        task_queue=dev_engine.settings.task_queue,
        execution_timeout=timedelta(hours=6),
    )
    await handle.signal(ENQUEUE_SIGNAL, {"events": [nested(220)]})
    await handle.signal(WebhookOutboxWorkflow.enqueue, EventBatch(final=True))
    final = await handle.result()
    assert final.state.closed and final.state.summary().events == []
    events = [event async for event in handle.fetch_history_events()]
    assert sum(event.HasField("workflow_task_failed_event_attributes") for event in events) == 0
