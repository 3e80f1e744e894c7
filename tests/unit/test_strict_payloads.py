"""DAG payloads refuse unknown keys with the key meant, take annotations, still take every
seed-shaped payload, and a workflow input recorded by older code still decodes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from workflows.dag.graph import DagGraph, validate_pipeline
from workflows.dag.models import DagRunInput, PipelineRequest
from workflows.dag.plan import levels, plan_pipeline
from workflows.shared.payloads import unknown_field_message

ROOT = Path(__file__).resolve().parents[2]

#: The payload example of the seed's design document (`backend-overview.md`), as written.
SEED_PAYLOAD: dict[str, Any] = {
    "workflow_id": "workflow-123",
    "namespace": "my-workspace",
    "original_input": "Input data",
    "input_data": {"input_1": "content", "input_2": "content"},
    "STEPS_CONFIG": [
        {
            "step_name": "step_1",
            "usid": "a1b2c3d4",
            "service_url": "https://api.openai.com/chat/completions",
            "method": "POST",
            "dependencies": [],
            "outputs": ["result_1"],
            "headers": {},
            "input_prep_config": {},
        }
    ],
    "PIPELINE_SETTINGS": {
        "error_handling": {"max_retries": 2, "retry_delay": 3},
        "timeouts": {"step_timeout": 45},
        "notifications": {"webhook_url": "https://backend.objs.space/api/workflows/webhook"},
    },
}


def unknown_fields(payload: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        PipelineRequest.model_validate(payload)
    return [
        unknown_field_message(PipelineRequest, error["loc"])
        for error in raised.value.errors()
        if error["type"] == "extra_forbidden"
    ]


def test_the_seed_payload_and_every_dag_example_validate_unchanged() -> None:
    examples = [
        json.loads(path.read_text())
        for path in sorted((ROOT / "examples").glob("*.json"))
        if "STEPS_CONFIG" in path.read_text()
    ]
    assert examples
    for payload in [SEED_PAYLOAD, *examples]:
        run = DagRunInput(**dict(PipelineRequest.model_validate(payload)))
        assert validate_pipeline(run) == []


def test_an_unknown_key_names_its_path_and_the_closest_known_key() -> None:
    payload = json.loads(json.dumps(SEED_PAYLOAD))
    payload["STEPS_CONFIG"][0]["outptus"] = ["x"]
    payload["PIPELINE_SETTINGS"]["notifications"]["webhook"] = "https://example.com"
    payload["PIPELINE_SETTINGS"]["concurency"] = {}
    payload["zzz"] = 1

    assert unknown_fields(payload) == [
        "STEPS_CONFIG[0].outptus: unknown field; did you mean 'outputs'?",
        "PIPELINE_SETTINGS.notifications.webhook: unknown field; did you mean 'webhook_url'?",
        "PIPELINE_SETTINGS.concurency: unknown field; did you mean 'concurrency'?",
        "zzz: unknown field",
    ]


def test_schema_key_is_taken_only_at_the_top() -> None:
    payload = json.loads(json.dumps(SEED_PAYLOAD))
    payload["$schema"] = "../schemas/pipeline.schema.json"
    PipelineRequest.model_validate(payload)
    payload["STEPS_CONFIG"][0]["$schema"] = "x"
    assert unknown_fields(payload) == ["STEPS_CONFIG[0].$schema: unknown field"]


def test_a_recorded_input_with_a_key_the_models_no_longer_know_still_decodes() -> None:
    recorded = DagRunInput(**dict(PipelineRequest.model_validate(SEED_PAYLOAD))).model_dump(
        mode="json"
    )
    recorded["retired_option"] = True
    recorded["STEPS_CONFIG"][0]["retired_step_option"] = 1
    recorded["PIPELINE_SETTINGS"]["timeouts"]["retired_timeout"] = 1

    decoded = DagRunInput.model_validate_json(json.dumps(recorded))

    assert decoded.STEPS_CONFIG[0].step_name == "step_1"
    assert decoded.PIPELINE_SETTINGS.timeouts.step_timeout == 45


def step(name: str, *dependencies: str, **fields: Any) -> dict[str, Any]:
    return {
        "step_name": name,
        "usid": f"u-{name}",
        "service_url": "http://127.0.0.1/x",
        "dependencies": list(dependencies),
        **fields,
    }


def test_levels_group_the_steps_that_may_run_together() -> None:
    pipeline = PipelineRequest.model_validate(
        {
            "workflow_id": "w",
            "STEPS_CONFIG": [
                step("report", "left", "right"),
                step("root"),
                step("left", "root"),
                step("right", "u-root"),
                step("alone"),
            ],
        }
    )
    graph = DagGraph.build(pipeline.STEPS_CONFIG)
    assert levels(graph) == [["root", "alone"], ["left", "right"], ["report"]]


def test_the_plan_warns_of_unread_outputs_and_steps_that_never_retry() -> None:
    pipeline = PipelineRequest.model_validate(
        {
            "workflow_id": "w",
            "STEPS_CONFIG": [
                step("a", outputs=["kept", "spare"]),
                step("b", "a", input_prep_config={"body": {"v": "{{kept}} {{secrets.KEY}}"}}),
            ],
            "PIPELINE_SETTINGS": {"error_handling": {"max_retries": 0}},
        }
    )
    plan = plan_pipeline(pipeline)
    assert plan.steps[1].reads == ["kept"]
    assert [(warning.loc, warning.msg) for warning in plan.warnings] == [
        (
            ["STEPS_CONFIG", 0, "outputs", 1],
            "step 'a': no step reads output 'spare' (the run's outputs still list it)",
        ),
        (
            ["STEPS_CONFIG", 0, "max_retries"],
            "step 'a': max_retries is 0, so one 5xx, 429 or timeout of its target fails it",
        ),
        (
            ["STEPS_CONFIG", 1, "max_retries"],
            "step 'b': max_retries is 0, so one 5xx, 429 or timeout of its target fails it",
        ),
    ]


def test_a_continued_input_keeps_every_step_it_carries() -> None:
    # The carried-over state holds the steps by name: names are data, not fields to drop.
    run = DagRunInput(**dict(PipelineRequest.model_validate(SEED_PAYLOAD)))
    carried = DagRunInput.model_validate(
        {
            **run.model_dump(mode="json"),
            "resume": {
                "result": {
                    "workflow_id": "w",
                    "steps": {
                        "step_1": {"step_name": "step_1", "usid": "a1b2c3d4", "status": "completed"}
                    },
                },
                "variables": {"result_1": 1},
            },
        }
    )
    assert carried.resume is not None
    assert carried.resume.result.steps["step_1"].status == "completed"
    assert carried.resume.variables == {"result_1": 1}
