"""Execution modes in the time-skipping server: where each step's call runs, as the run's
history records it, and that the call writes the step's outputs itself."""

from __future__ import annotations

import json
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from activities.http.models import CALL_HTTP
from activities.store.models import WRITE_OUTPUTS
from tests.conftest import Engine, Targets, unique
from tests.workflows.test_dag_workflow import pipeline, run_failing
from worker import WORKFLOW_RUNNER
from workflows.dag.models import DagRunInput, DagRunResult
from workflows.dag.segment import RUN_SEGMENT
from workflows.dag.workflow import DagWorkflow
from workflows.instructions.models import InstructionRunInput
from workflows.instructions.workflow import InstructionWorkflow
from workflows.shared.execution import ExecutionMode

#: The marker the SDK records for each local activity it ran.
LOCAL_ACTIVITY_MARKER = "core_local_activity"


async def run_in_mode(
    engine: Engine, payload: DagRunInput, mode: ExecutionMode
) -> tuple[DagRunResult, WorkflowHistory]:
    payload.engine.task_queue = engine.settings.task_queue
    payload.engine.execution_mode = mode
    handle = await engine.client.start_workflow(
        DagWorkflow.run, payload, id=payload.workflow_id, task_queue=engine.settings.task_queue
    )
    result = await handle.result()
    return result, await handle.fetch_history()


def local_activities(history: WorkflowHistory) -> list[str]:
    """The activity type of every local activity the run recorded, in order."""
    types = []
    for event in history.events:
        attributes = event.marker_recorded_event_attributes
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and (
            attributes.marker_name == LOCAL_ACTIVITY_MARKER
        ):
            data = json.loads(attributes.details["data"].payloads[0].data)
            types.append(data["activity_type"])
    return types


def scheduled_activities(history: WorkflowHistory) -> list[HistoryEvent]:
    return [
        event
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def echo_steps(targets: Targets, key: str, **overrides: Any) -> list[dict[str, Any]]:
    return [
        {
            "step_name": "first",
            "usid": "u-1",
            "service_url": f"{targets.url}/echo/{key}",
            "outputs": ["greeting"],
            "input_prep_config": {"body": {"text": "hi"}},
        },
        {
            "step_name": "second",
            "usid": "u-2",
            "service_url": f"{targets.url}/echo/{key}",
            "dependencies": ["first"],
            "outputs": ["echoed"],
            "input_prep_config": {"body": {"again": "{{greeting.json.text}}"}},
            **overrides,
        },
    ]


async def replays(engine: Engine, history: WorkflowHistory) -> None:
    replayer = Replayer(
        workflows=[DagWorkflow],
        workflow_runner=WORKFLOW_RUNNER,
        data_converter=engine.client.data_converter,
    )
    await replayer.replay_workflow(history)


async def test_fast_steps_run_in_one_segment(engine: Engine, targets: Targets, redis):
    key = unique("fast")
    payload = pipeline(echo_steps(targets, key))
    result, history = await run_in_mode(engine, payload, "fast")
    assert result.status == "completed"
    assert result.outputs["echoed"]["json"] == {"again": "hi"}
    # Both steps, the second templated from the first's output, ran in one local activity
    # (one marker); none is scheduled on the server, and no separate write of the outputs
    # follows: the calls wrote them.
    assert local_activities(history) == [RUN_SEGMENT]
    assert scheduled_activities(history) == []
    stored = await redis.get(f"tests:{payload.workflow_id}:echoed")
    assert json.loads(stored)["json"] == {"again": "hi"}
    for state in result.steps.values():
        assert state.attempts == 1 and state.http_status == 200
        assert state.started_at is not None and state.finished_at is not None
        assert state.started_at <= state.finished_at
    await replays(engine, history)


async def test_a_step_too_long_for_a_local_activity_falls_back(engine: Engine, targets: Targets):
    key = unique("long")
    payload = pipeline(echo_steps(targets, key, timeout=120))
    result, history = await run_in_mode(engine, payload, "fast")
    assert result.status == "completed"
    assert local_activities(history) == [RUN_SEGMENT]
    [scheduled] = scheduled_activities(history)
    attributes = scheduled.activity_task_scheduled_event_attributes
    assert attributes.activity_id == "step:second"
    assert attributes.activity_type.name == CALL_HTTP
    await replays(engine, history)


async def test_auto_runs_only_short_steps_locally(engine: Engine, targets: Targets):
    key = unique("auto")
    # The default step (45 s, two retries) could take minutes at worst: a regular activity.
    payload = pipeline(echo_steps(targets, key), timeouts={"step_timeout": 10})
    payload.STEPS_CONFIG[1].timeout = 45
    result, history = await run_in_mode(engine, payload, "auto")
    assert result.status == "completed"
    assert local_activities(history) == [RUN_SEGMENT]
    [scheduled] = scheduled_activities(history)
    assert scheduled.activity_task_scheduled_event_attributes.activity_id == "step:second"


async def test_durable_steps_write_their_own_outputs(engine: Engine, targets: Targets, redis):
    key = unique("durable")
    payload = pipeline(echo_steps(targets, key))
    result, history = await run_in_mode(engine, payload, "durable")
    assert result.status == "completed"
    assert len(scheduled_activities(history)) == 2
    assert WRITE_OUTPUTS not in local_activities(history)
    assert local_activities(history) == []
    stored = await redis.get(f"tests:{payload.workflow_id}:greeting")
    assert json.loads(stored)["json"] == {"text": "hi"}


async def test_fast_steps_are_retried(engine: Engine, targets: Targets):
    key = unique("flaky")
    payload = pipeline(
        [{"step_name": "a", "usid": "u", "service_url": f"{targets.url}/flaky/{key}?failures=1"}],
        error_handling={"max_retries": 2, "retry_delay": 1},
    )
    result, history = await run_in_mode(engine, payload, "fast")
    assert result.steps["a"].status == "completed"
    assert result.steps["a"].attempts == 2
    assert targets.state.calls[key] == 2
    assert scheduled_activities(history) == []
    await replays(engine, history)


async def test_a_fast_step_failing_for_good_fails_the_run(engine: Engine, targets: Targets):
    key = unique("down")
    payload = pipeline(
        [
            {
                "step_name": "a",
                "usid": "u",
                "service_url": f"{targets.url}/flaky/{key}?failures=9",
            }
        ],
        error_handling={"max_retries": 1, "retry_delay": 1},
    )
    payload.engine.execution_mode = "fast"
    result = await run_failing(engine, payload)
    assert result.steps["a"].status == "failed"
    assert result.error is not None and result.error.attempts == 2
    assert result.error.http_status == 503
    assert targets.state.calls[key] == 2


async def test_fast_instruction_endpoint_steps_run_locally(engine: Engine, targets: Targets):
    key = unique("instr")
    run = InstructionRunInput.model_validate(
        {
            "context": "CONTEXT",
            "instructions": [
                {
                    "type": "endpoint",
                    "apiUrl": f"{targets.url}/flaky/{key}?failures=1",
                    "method": "GET",
                    "retries": 2,
                    "retryDelay": 200,
                    "timeout": 5000,
                },
                {"type": "endpoint", "apiUrl": f"{targets.url}/echo/{key}", "timeout": 120_000},
            ],
        }
    )
    run.engine.execution_mode = "fast"
    handle = await engine.client.start_workflow(
        InstructionWorkflow.run, run, id=unique("instr"), task_queue=engine.settings.task_queue
    )
    status = await handle.result()
    history = await handle.fetch_history()
    assert status.status == "complete"
    assert targets.state.calls[key] == 3  # the flaky call retried once, then the echo
    # The short call ran locally (retried by the worker); the two-minute one is too long.
    assert local_activities(history) == [CALL_HTTP]
    [scheduled] = scheduled_activities(history)
    assert scheduled.activity_task_scheduled_event_attributes.activity_type.name == CALL_HTTP
