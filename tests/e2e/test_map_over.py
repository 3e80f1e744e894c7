"""`map_over` through the real gateway, dev server and workers: a rerun of a map step
reruns only the items that failed (the local targets count every call), and the status
shows the items' counts."""

from __future__ import annotations

from typing import Any

from tests.conftest import Gateway, Targets, unique
from tests.e2e.test_rerun import ended, pipeline
from tests.fakes.llm_server import FakeLLMServer

#: Items whose first call answers 404 (not retried), and whose next call succeeds.
FLAKY = (3, 11, 17, 29)


def items(targets: Targets, key: str, total: int) -> list[dict[str, Any]]:
    return [
        {
            "url": f"{targets.url}/flaky/{key}-{i}?failures=1&code=404"
            if i in FLAKY
            else f"{targets.url}/record/{key}-{i}"
        }
        for i in range(total)
    ]


def map_pipeline(targets: Targets, key: str, mode: str, **options: Any) -> dict[str, Any]:
    body = pipeline(
        [
            {
                "step_name": "each",
                "usid": "u-each",
                "service_url": "{{item.url}}",
                "map_over": "{{input_data.items}}",
                "map": {"concurrency": 5, "tolerated_failure_count": 4, **options},
            },
            {
                "step_name": "after",
                "usid": "u-after",
                "dependencies": ["each"],
                "service_url": f"{targets.url}/record/{key}-after",
                "input_prep_config": {"body": {"failed": "{{each_result[3]}}"}},
            },
        ],
        mode,
    )
    body["input_data"] = {"items": items(targets, key, 40)}
    return body


def calls(targets: Targets, key: str) -> dict[int, int]:
    return {i: targets.state.calls[f"{key}-{i}"] for i in range(40)}


async def test_a_rerun_of_a_map_step_reruns_only_its_failed_items(
    gateway: Gateway, targets: Targets
):
    key = unique("maprerun")
    body = map_pipeline(targets, key, "fast")
    first = (await gateway.http.post("/execute", json=body)).json()
    assert first["status"] == "completed", first
    step = first["steps"]["each"]
    assert step["failed_items"] == list(FLAKY)
    assert step["items"] == {"total": 40, "completed": 36, "failed": 4, "running": 0}
    assert [error["index"] for error in step["item_errors"]] == list(FLAKY)
    assert step["result"][3] is None and step["result"][4] == {"ok": True, "calls": 1}
    assert calls(targets, key) == dict.fromkeys(range(40), 1)
    # A fast run with a map keeps Temporal's task timeout, not the one-second one: the task
    # that receives a long list may need more than a second.
    temporal = gateway.engine.client
    described = await temporal.get_workflow_handle(body["workflow_id"]).describe()
    timeout = described.raw_description.execution_config.default_workflow_task_timeout
    assert timeout.ToSeconds() == 10

    response = await gateway.http.post(f"/runs/{body['workflow_id']}/rerun", json={})
    assert response.status_code == 202, response.text
    assert response.json()["rerun"] == ["each", "after"]
    result = await ended(gateway, response.json()["workflow_id"])
    assert result["status"] == "completed", result
    rerun = result["steps"]["each"]
    assert rerun["failed_items"] == []
    assert rerun["result"][3] == {"ok": True, "calls": 2}
    assert rerun["result"][4] == {"ok": True, "calls": 1}  # kept from the first run
    # Only the four failed items were called again.
    assert calls(targets, key) == {i: 2 if i in FLAKY else 1 for i in range(40)}


async def test_a_map_with_both_tolerances_is_refused_naming_the_field(
    gateway: Gateway, targets: Targets
):
    body = map_pipeline(targets, unique("both"), "durable", tolerated_failure_percent=5)
    response = await gateway.http.post("/execute", json=body)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "STEPS_CONFIG", 0, "map"]
    assert "not both" in problem["msg"]


async def test_an_instructions_step_maps_each_item_to_a_child_run(
    llm_gateway: Gateway, fake_llm: FakeLLMServer
):
    fake_llm.when("Shorten", provider="openai").respond(
        lambda request: "short " + request.prompt_text.split("<<")[1].split(">>")[0]
    )
    body = pipeline(
        [
            {
                "step_name": "shorten",
                "usid": "u-shorten",
                "type": "instructions",
                "map_over": "{{original_input.texts}}",
                "map": {"concurrency": 2},
                "instructions": {
                    "context": "<<{{item}}>> #{{item_index}}",
                    "instructions": ["Shorten this text."],
                    "model": "gpt-child",
                },
            }
        ]
    )
    body["original_input"] = {"texts": ["alpha", "beta", "gamma"]}
    run = (await llm_gateway.http.post("/execute", json=body)).json()
    assert run["status"] == "completed", run
    step = run["steps"]["shorten"]
    assert [child["output"] for child in step["result"]] == [
        "short alpha",
        "short beta",
        "short gamma",
    ]
    assert step["items"]["completed"] == 3
    assert step["usage"]["input_tokens"] > 0
