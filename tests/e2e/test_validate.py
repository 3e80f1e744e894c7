"""Strict payloads, `POST /validate` and `GET /schemas/{name}` through the real gateway."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Gateway, Targets, unique

ROOT = Path(__file__).resolve().parents[2]


def pipeline(targets: Targets, **extra: Any) -> dict[str, Any]:
    key = unique("validate")
    return {
        "workflow_id": unique("validate"),
        "original_input": "temporal",
        "STEPS_CONFIG": [
            {
                "step_name": "fetch",
                "usid": "s1",
                "service_url": f"{targets.url}/echo/{key}",
                "outputs": ["article"],
            },
            {
                "step_name": "summarize",
                "usid": "s2",
                "dependencies": ["fetch"],
                "service_url": f"{targets.url}/echo/{key}",
                "input_prep_config": {"body": {"text": "{{article.json}}"}},
                "outputs": ["summary"],
            },
            {
                "step_name": "keywords",
                "usid": "s3",
                "dependencies": ["fetch"],
                "service_url": f"{targets.url}/echo/{key}",
                "input_prep_config": {"body": {"text": "{{fetch_result}}"}},
                "max_retries": 0,
            },
        ],
        **extra,
    }


async def test_a_typo_in_any_dag_field_is_a_422_naming_the_key_meant(
    gateway: Gateway, targets: Targets
) -> None:
    body = pipeline(targets, PIPELINE_SETTINGS={"timeouts": {"step_timout": 5}})
    body["STEPS_CONFIG"][2]["timout"] = 5
    body["STEPS_CONFIG"][1]["dependancies"] = ["fetch"]
    body["STEPS_CONFIG"][0]["input_prep_config"] = {"bdoy": {}}

    response = await gateway.http.post("/execute", json=body)

    assert response.status_code == 422
    assert sorted(response.json()["detail"], key=lambda item: item["loc"]) == [
        {
            "loc": ["body", "PIPELINE_SETTINGS", "timeouts", "step_timout"],
            "msg": "PIPELINE_SETTINGS.timeouts.step_timout: unknown field; did you mean"
            " 'step_timeout'?",
            "type": "extra_forbidden",
        },
        {
            "loc": ["body", "STEPS_CONFIG", 0, "input_prep_config", "bdoy"],
            "msg": "STEPS_CONFIG[0].input_prep_config.bdoy: unknown field; did you mean 'body'?",
            "type": "extra_forbidden",
        },
        {
            "loc": ["body", "STEPS_CONFIG", 1, "dependancies"],
            "msg": "STEPS_CONFIG[1].dependancies: unknown field; did you mean 'dependencies'?",
            "type": "extra_forbidden",
        },
        {
            "loc": ["body", "STEPS_CONFIG", 2, "timout"],
            "msg": "STEPS_CONFIG[2].timout: unknown field; did you mean 'timeout'?",
            "type": "extra_forbidden",
        },
    ]


async def test_annotations_descriptions_and_the_schema_key_are_accepted_and_ignored(
    gateway: Gateway, targets: Targets
) -> None:
    body = {
        "$schema": "../schemas/pipeline.schema.json",
        "x-owner": "team-a",
        "description": "fetch, then two readers",
        **pipeline(targets),
    }
    body["STEPS_CONFIG"][0] |= {"description": "the article", "x-ticket": 18}
    body["PIPELINE_SETTINGS"] = {"error_handling": {"x-why": "flaky target", "max_retries": 1}}

    response = await gateway.http.post("/execute", json=body)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"


async def test_validate_answers_the_plan_without_running(
    gateway: Gateway, targets: Targets
) -> None:
    body = pipeline(targets)

    response = await gateway.http.post("/validate", json=body)

    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["engine"] == "dag"
    assert plan["levels"] == [["fetch"], ["summarize", "keywords"]]
    assert plan["steps"] == [
        {"name": "fetch", "type": "http", "dependencies": [], "reads": []},
        {"name": "summarize", "type": "http", "dependencies": ["fetch"], "reads": ["article"]},
        {"name": "keywords", "type": "http", "dependencies": ["fetch"], "reads": ["fetch_result"]},
    ]
    assert [warning["loc"] for warning in plan["warnings"]] == [
        ["STEPS_CONFIG", 1, "outputs", 0],
        ["STEPS_CONFIG", 2, "max_retries"],
    ]
    assert "no step reads output 'summary'" in plan["warnings"][0]["msg"]
    runs = await gateway.http.get(f"/runs/{body['workflow_id']}")
    assert runs.status_code == 404


async def test_validate_lists_every_problem_at_once(gateway: Gateway, targets: Targets) -> None:
    shapes = pipeline(targets)
    shapes["STEPS_CONFIG"][0]["timout"] = 5
    del shapes["STEPS_CONFIG"][1]["usid"]
    graph = pipeline(targets)
    graph["STEPS_CONFIG"][1]["dependencies"] = ["fecth"]
    graph["STEPS_CONFIG"][2]["method"] = "FETCH"

    by_shape = await gateway.http.post("/validate", json=shapes)
    by_graph = await gateway.http.post("/validate", json=graph)

    assert by_shape.status_code == 422
    assert [item["msg"] for item in by_shape.json()["detail"]] == [
        "STEPS_CONFIG[0].timout: unknown field; did you mean 'timeout'?",
        "Field required",
    ]
    assert by_graph.status_code == 422
    assert [item["loc"] for item in by_graph.json()["detail"]] == [
        ["body", "STEPS_CONFIG", 1, "dependencies", 0],
        ["body", "STEPS_CONFIG", 2, "method"],
        ["body", "STEPS_CONFIG", 1, "input_prep_config", "body", "text"],
    ]


async def test_validate_takes_an_instruction_run_by_its_shape_or_by_engine(
    gateway: Gateway,
) -> None:
    run = json.loads((ROOT / "examples" / "instructions_basic.json").read_text())

    by_shape = await gateway.http.post("/validate", json=run)
    told = await gateway.http.post("/validate", params={"engine": "instructions"}, json=run)
    typo = await gateway.http.post(
        "/validate", json={"context": "x", "instructions": [{"type": "endpoint", "apiUrl": 3}]}
    )
    neither = await gateway.http.post("/validate", json={"steps": []})

    assert by_shape.status_code == told.status_code == 200
    plan = by_shape.json()
    assert plan == told.json()
    assert plan["engine"] == "instructions"
    assert [step["type"] for step in plan["steps"]][:3] == ["llm", "llm", "condition"]
    assert plan["levels"][:2] == [["0"], ["1"]]
    assert plan["steps"][1]["dependencies"] == ["0"]
    assert typo.status_code == 422
    assert typo.json()["detail"][0]["loc"][:3] == ["body", "instructions", 0]
    assert neither.status_code == 422
    assert "not a pipeline" in neither.json()["detail"]


async def test_schemas_are_served_as_committed(gateway: Gateway) -> None:
    for name in ("pipeline", "instructions"):
        response = await gateway.http.get(f"/schemas/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/schema+json"
        committed = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())
        assert response.json() == committed
    assert (await gateway.http.get("/schemas/steps")).status_code == 404


def llm_pipeline(targets: Targets) -> dict[str, Any]:
    """An http step, an `llm` step reading it and an `instructions` step reading the answer."""
    return {
        "workflow_id": unique("validate-llm"),
        "STEPS_CONFIG": [
            {
                "step_name": "fetch",
                "usid": "s1",
                "service_url": f"{targets.url}/echo/{unique('v')}",
                "outputs": ["items"],
            },
            {
                "step_name": "classify",
                "usid": "s2",
                "type": "llm",
                "dependencies": ["fetch"],
                "llm": {"provider": "openai", "model": "gpt-5-nano", "prompt": "Sort {{items}}"},
                "outputs": ["kinds"],
            },
            {
                "step_name": "advise",
                "usid": "s3",
                "type": "instructions",
                "dependencies": ["classify"],
                "instructions": {"context": "{{kinds.text}}", "instructions": ["Advise."]},
            },
        ],
    }


async def test_validate_plans_llm_and_instruction_steps(gateway: Gateway, targets: Targets):
    response = await gateway.http.post("/validate", json=llm_pipeline(targets))

    assert response.status_code == 200, response.text
    plan = response.json()
    assert [(step["name"], step["type"], step["reads"]) for step in plan["steps"]] == [
        ("fetch", "http", []),
        ("classify", "llm", ["items"]),
        ("advise", "instructions", ["kinds"]),
    ]
    assert plan["levels"] == [["fetch"], ["classify"], ["advise"]]
    assert ["STEPS_CONFIG", 1, "llm", "max_tokens"] in [w["loc"] for w in plan["warnings"]]


async def test_validate_finds_typos_and_bad_bodies_inside_the_new_step_types(
    gateway: Gateway, targets: Targets
):
    body = llm_pipeline(targets)
    body["STEPS_CONFIG"][1]["llm"]["promt"] = "typo"
    body["STEPS_CONFIG"][1]["llm"]["messages"] = [{"role": "user", "contnet": "hi"}]
    body["STEPS_CONFIG"][2]["instructions"]["instructions"] = []

    shape = await gateway.http.post("/validate", json=body)
    assert shape.status_code == 422
    messages = [item["msg"] for item in shape.json()["detail"]]
    assert "STEPS_CONFIG[1].llm.promt: unknown field; did you mean 'prompt'?" in messages
    assert "STEPS_CONFIG[1].llm.messages[0].contnet: unknown field; did you mean 'content'?" in (
        messages
    )

    graph = llm_pipeline(targets)
    graph["STEPS_CONFIG"][1]["llm"]["prompt"] = "Sort {{missing.text}}"
    graph["STEPS_CONFIG"][2]["instructions"]["instructions"] = []
    answer = await gateway.http.post("/validate", json=graph)
    assert answer.status_code == 422
    locs = [item["loc"][:4] for item in answer.json()["detail"]]
    assert ["body", "STEPS_CONFIG", 1, "llm"] in locs
    assert ["body", "STEPS_CONFIG", 2, "instructions"] in locs
