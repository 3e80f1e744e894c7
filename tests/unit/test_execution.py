"""Execution modes: which calls run as local activities, and how a run's mode is decided."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.starts import dag_engine_options, instruction_engine_options
from gateway.tenancy import OPEN_TENANT, Tenant
from settings import Settings
from workflows.dag.models import DagRunInput, EngineOptions, PipelineRequest
from workflows.dag.placement import may_run_local
from workflows.instructions.models import InstructionEngineOptions, InstructionRunRequest
from workflows.shared.control import CONTROL_MAX_STEPS, workflow_task_timeout
from workflows.shared.execution import ExecutionMode, retry_waits, runs_local

OPEN = Tenant(OPEN_TENANT, scoped=False)


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def request(**execution: object) -> PipelineRequest:
    return PipelineRequest.model_validate(
        {
            "workflow_id": "wf",
            "STEPS_CONFIG": [{"step_name": "a", "usid": "u", "service_url": "http://x.test/"}],
            "PIPELINE_SETTINGS": {"execution": execution},
        }
    )


def test_retry_waits_double_from_the_delay_up_to_32_times_it() -> None:
    assert retry_waits(0, 3) == 0
    assert retry_waits(2, 3) == 3 + 6
    assert retry_waits(8, 1) == 1 + 2 + 4 + 8 + 16 + 32 + 32 + 32


@pytest.mark.parametrize(
    ("mode", "timeout", "retries", "delay", "routed", "local"),
    [
        ("durable", 1, 0, 1, False, False),
        # fast: one attempt and the waits each within 60 s.
        ("fast", 45, 2, 3, False, True),
        ("fast", 60, 0, 1, False, True),
        ("fast", 61, 0, 1, False, False),
        ("fast", 10, 5, 3, False, False),  # 3+6+12+24+48 s of waits
        ("fast", 10, 0, 1, True, False),  # an endpoint worker's queue: out of reach
        # auto: every attempt timing out plus the waits within 60 s.
        ("auto", 45, 2, 3, False, False),
        ("auto", 10, 2, 3, False, True),
        ("auto", 20, 2, 1, False, False),  # 3 x 20 + 3
        ("auto", 10, 0, 1, True, False),
    ],
)
def test_runs_local(
    mode: ExecutionMode, timeout: float, retries: int, delay: float, routed: bool, local: bool
) -> None:
    assert (
        runs_local(
            mode, timeout_seconds=timeout, max_retries=retries, retry_delay=delay, routed=routed
        )
        is local
    )


def test_the_bound_is_the_one_stamped_on_the_run() -> None:
    kwargs = {"timeout_seconds": 90.0, "max_retries": 0, "retry_delay": 1.0, "routed": False}
    assert not runs_local("fast", **kwargs)  # type: ignore[arg-type]
    assert runs_local("fast", local_max_seconds=120, **kwargs)  # type: ignore[arg-type]


def test_a_pipeline_mode_wins_over_the_operator_default() -> None:
    assert dag_engine_options(settings(), OPEN, request(mode="fast")).execution_mode == "fast"
    assert dag_engine_options(settings(), OPEN, request(mode="durable")).execution_mode == "durable"


def test_without_a_mode_the_operator_default_is_stamped() -> None:
    assert dag_engine_options(settings(), OPEN, request()).execution_mode == "auto"
    configured = settings(execution_mode="fast")
    assert dag_engine_options(configured, OPEN, request()).execution_mode == "fast"


def test_inputs_from_before_modes_run_durable() -> None:
    recorded = request().model_dump(mode="json")
    del recorded["PIPELINE_SETTINGS"]["execution"]
    run = DagRunInput.model_validate({**recorded, "engine": {"validated": True}})
    assert run.engine.execution_mode == "durable"
    assert EngineOptions().execution_mode == "durable"
    assert InstructionEngineOptions().execution_mode == "durable"


def test_an_unknown_mode_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        request(mode="turbo")
    [error] = info.value.errors()
    assert error["loc"] == ("PIPELINE_SETTINGS", "execution", "mode")


def test_an_instruction_run_takes_execution_mode_in_camel_case() -> None:
    asked = InstructionRunRequest.model_validate(
        {"context": "c", "instructions": ["say hi"], "executionMode": "fast"}
    )
    assert instruction_engine_options(settings(), asked).execution_mode == "fast"
    default = InstructionRunRequest.model_validate({"context": "c", "instructions": ["hi"]})
    assert instruction_engine_options(settings(), default).execution_mode == "auto"
    with pytest.raises(ValidationError) as info:
        InstructionRunRequest.model_validate(
            {"context": "c", "instructions": ["hi"], "executionMode": "turbo"}
        )
    assert info.value.errors()[0]["loc"] == ("executionMode",)


def test_an_unknown_operator_default_stops_the_settings() -> None:
    with pytest.raises(ValidationError):
        settings(execution_mode="turbo")


def run_of(steps: list[dict[str, object]], mode: ExecutionMode, **timeouts: object) -> DagRunInput:
    run = DagRunInput.model_validate(
        {"workflow_id": "wf", "STEPS_CONFIG": steps, "PIPELINE_SETTINGS": {"timeouts": timeouts}}
    )
    run.engine.execution_mode = mode
    run.engine.endpoint_workers = ["gpu"]
    return run


HTTP_STEP: dict[str, object] = {"step_name": "a", "usid": "u", "service_url": "http://x.test/"}


@pytest.mark.parametrize(
    ("mode", "timeouts", "step", "local"),
    [
        ("fast", {}, HTTP_STEP, True),
        ("durable", {"step_timeout": 5}, HTTP_STEP, False),
        # auto with the default 45 s timeout and two retries: every call is durable.
        ("auto", {}, HTTP_STEP, False),
        ("auto", {"step_timeout": 5}, HTTP_STEP, True),
        ("fast", {}, {**HTTP_STEP, "endpoint": "gpu"}, False),
        (
            "fast",
            {},
            {
                "step_name": "a",
                "usid": "u",
                "type": "llm",
                "llm": {"provider": "openai", "model": "m", "prompt": "hi"},
            },
            False,
        ),
    ],
)
def test_a_run_may_run_local_work_when_a_call_of_its_is_placed_local(
    mode: ExecutionMode, timeouts: dict[str, object], step: dict[str, object], local: bool
) -> None:
    """What decides its workflow task timeout (`workflows.shared.control`)."""
    assert may_run_local(run_of([step], mode, **timeouts)) is local


@pytest.mark.parametrize(
    ("may_run_local", "steps", "seconds"),
    [
        (True, 1, 0.75),
        (True, CONTROL_MAX_STEPS, 0.75),
        (True, CONTROL_MAX_STEPS + 1, None),
        (False, 1, None),
    ],
)
def test_only_runs_small_enough_for_a_short_task_get_one(
    may_run_local: bool, steps: int, seconds: float | None
) -> None:
    # A task that always outlasts its timeout is retried for ever: a run with thousands of
    # steps keeps Temporal's default, and is controlled within about 8 s instead of 1.
    timeout = workflow_task_timeout(may_run_local, steps)
    assert (timeout.total_seconds() if timeout else None) == seconds
