"""`map_over` steps in the time-skipping server, against local targets that count calls:
results in input order, tolerated failures, and the batch path's bounded parent history."""

from __future__ import annotations

import json
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from tests.conftest import Engine, Targets, unique
from tests.fakes.llm_server import FakeLLMServer
from tests.workflows.test_dag_workflow import pipeline, run, run_failing
from workflows.dag.models import DagRunInput, DagRunResult
from workflows.dag.workflow import DagWorkflow


def mapped(
    targets: Targets, key: str, items: list[Any], mode: str = "durable", **options: Any
) -> DagRunInput:
    """One step posting each item (and its index) to the echo target, after nothing."""
    payload = pipeline(
        [
            {
                "step_name": "each",
                "usid": "u-each",
                "service_url": f"{targets.url}/echo/{key}",
                "map_over": "{{input_data.items}}",
                "map": {"concurrency": 8, **options},
                "outputs": ["echoed"],
                "input_prep_config": {"body": {"name": "{{item.name}}", "at": "{{item_index}}"}},
            }
        ],
        execution={"mode": mode},
        error_handling={"max_retries": 0, "retry_delay": 0.1},
    )
    payload.input_data = {"items": items}
    payload.engine.execution_mode = mode  # as the gateway resolves it
    return payload


def failing_every(targets: Targets, key: str, total: int, every: int) -> list[dict[str, Any]]:
    """`total` items; each `every`-th one's call answers 404 (not retried)."""
    return [{"name": f"n{i}", "code": 404 if i % every == 0 else 200} for i in range(total)]


def status_step(targets: Targets, key: str, items: list[Any], **options: Any) -> DagRunInput:
    payload = mapped(targets, key, items, **options)
    payload.STEPS_CONFIG[0].service_url = f"{targets.url}/status/{key}/{{{{item.code}}}}"
    return payload


async def start_and_history(
    engine: Engine, payload: DagRunInput
) -> tuple[DagRunResult, WorkflowHistory]:
    payload.engine.task_queue = engine.settings.task_queue
    handle = await engine.client.start_workflow(
        DagWorkflow.run, payload, id=payload.workflow_id, task_queue=engine.settings.task_queue
    )
    result = await handle.result()
    return result, await handle.fetch_history()


@pytest.mark.parametrize("mode", ["durable", "fast"])
async def test_results_come_in_input_order_with_item_and_index(
    engine: Engine, targets: Targets, mode: str
):
    key = unique("map")
    items = [{"name": f"n{i}"} for i in range(30)]
    result = await run(engine, mapped(targets, key, items, mode))
    assert result.status == "completed"
    step = result.steps["each"]
    bodies = [answer["json"] for answer in step.result]
    assert bodies == [{"name": f"n{i}", "at": i} for i in range(30)]
    assert result.outputs["echoed"] == step.result
    assert step.failed_items == [] and step.item_errors == []
    assert step.items is not None
    assert step.items.model_dump() == {"total": 30, "completed": 30, "failed": 0, "running": 0}
    assert targets.state.calls[key] == 30


async def test_five_percent_failing_completes_under_a_ten_percent_tolerance(
    engine: Engine, targets: Targets
):
    key = unique("tolerated")
    items = failing_every(targets, key, 200, every=20)
    result = await run(engine, status_step(targets, key, items, tolerated_failure_percent=10))
    assert result.status == "completed"
    step = result.steps["each"]
    failed = list(range(0, 200, 20))
    assert step.failed_items == failed
    assert [error.index for error in step.item_errors or []] == failed
    assert all("404" in error.error for error in step.item_errors or [])
    assert [i for i, value in enumerate(step.result) if value is None] == failed
    assert step.items is not None and (step.items.completed, step.items.failed) == (190, 10)


async def test_five_percent_failing_fails_under_a_two_percent_tolerance(
    engine: Engine, targets: Targets
):
    key = unique("intolerable")
    items = failing_every(targets, key, 200, every=20)
    result = await run_failing(
        engine, status_step(targets, key, items, tolerated_failure_percent=2)
    )
    step = result.steps["each"]
    assert step.status == "failed"
    assert step.error is not None and step.error.type == "MapToleranceExceeded"
    assert "2% tolerated" in step.error.message
    # Past the tolerance no further item starts: those not run count as failed, for a rerun.
    assert step.failed_items is not None and len(step.failed_items) > 4
    assert targets.state.calls[key] < 200


async def test_a_map_over_something_not_a_list_fails_naming_the_step(
    engine: Engine, targets: Targets
):
    key = unique("notalist")
    payload = mapped(targets, key, [])
    payload.input_data = {"items": {"a": 1}}
    result = await run_failing(engine, payload)
    error = result.steps["each"].error
    assert error is not None and error.type == "TemplateError"
    assert "step 'each': map_over {{input_data.items}} must be a list" in error.message
    assert "dict" in error.message
    assert targets.state.calls[key] == 0


def events_of(history: WorkflowHistory) -> int:
    return len(history.events)


@pytest.mark.parametrize("mode", ["durable", "fast"])
async def test_large_maps_run_by_batch_and_keep_the_parent_history_bounded(
    engine: Engine, targets: Targets, mode: str
):
    """With a threshold of 10 items, 40 and 160 items run in child batches of 20 (at most
    MAX_MAP_BATCHES): the parent's history grows by batches, not by items, and the inline
    run of the same 40 items records several events per item."""
    key = unique("batched")
    sizes = {}
    for total in (40, 160):
        items = [{"name": f"n{i}"} for i in range(total)]
        payload = mapped(targets, key, items, mode, batch_size=20)
        payload.engine.map_inline_max_items = 10
        result, history = await start_and_history(engine, payload)
        assert result.status == "completed"
        assert [answer["json"]["at"] for answer in result.steps["each"].result] == list(
            range(total)
        )
        sizes[total] = events_of(history)
        children = [
            event
            for event in history.events
            if event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
        ]
        assert len(children) == total // 20
    inline = mapped(targets, key, [{"name": f"n{i}"} for i in range(40)], mode)
    _, inline_history = await start_and_history(engine, inline)
    # Each of the 8 batches of 160 adds a child's few events; 40 inline items add more.
    assert sizes[160] - sizes[40] <= 6 * 9
    assert sizes[40] < events_of(inline_history)
    assert targets.state.calls[key] == 40 + 160 + 40


async def test_a_batch_carries_its_own_items_not_the_runs_whole_list(
    engine: Engine, targets: Targets
):
    """The mapped list is usually in the run's input; a batch whose step sends no default
    body gets only its slice of it (else every batch would carry the whole list)."""
    key = unique("slice")
    payload = mapped(targets, key, [{"name": f"n{i}"} for i in range(60)], batch_size=20)
    payload.engine.map_inline_max_items = 10
    result = await run(engine, payload)
    assert result.status == "completed"
    batch = engine.client.get_workflow_handle(f"{payload.workflow_id}:each:batch-1")
    history = await batch.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads
    [carried] = await engine.client.data_converter.decode(started[:1])
    assert [index for index, _ in carried["items"]] == list(range(20, 40))
    assert carried["work"]["input_data"] == {}
    assert "input_data" not in carried["work"]["variables"]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_an_llm_step_maps_over_items_through_the_real_sdks(
    llm_engine: Engine, fake_llm: FakeLLMServer, provider: str
):
    for name, label in (("apple", "fruit"), ("carrot", "vegetable"), ("pear", "fruit")):
        fake_llm.when(f": {name}.", provider=provider).reply_json({"label": label}, usage=(7, 3))
    fake_llm.when("broccoli", provider=provider).fail(400)
    payload = pipeline(
        [
            {
                "step_name": "classify",
                "usid": "u-classify",
                "type": "llm",
                "map_over": "{{input_data.items}}",
                "map": {"concurrency": 2, "tolerated_failure_count": 1},
                "llm": {
                    "provider": provider,
                    "model": "gpt-test",
                    "prompt": "Item {{item_index}}: {{item}}.",
                    "max_tokens": 20,
                },
            }
        ],
        error_handling={"max_retries": 0, "retry_delay": 0.1},
    )
    payload.input_data = {"items": ["apple", "carrot", "broccoli", "pear"]}
    result = await run(llm_engine, payload)
    step = result.steps["classify"]
    assert [answer and json.loads(answer["text"]) for answer in step.result] == [
        {"label": "fruit"},
        {"label": "vegetable"},
        None,
        {"label": "fruit"},
    ]
    assert step.failed_items == [2]
    assert step.usage is not None and step.usage.input_tokens == 21
    prompts = sorted(r.prompt_text for r in fake_llm.requests if "Item" in r.prompt_text)
    assert [p.split("Item ")[1] for p in prompts] == [
        "0: apple.",
        "1: carrot.",
        "2: broccoli.",
        "3: pear.",
    ]
