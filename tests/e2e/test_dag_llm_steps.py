"""`llm` and `instructions` steps in a DAG, through `POST /execute`: the real gateway, dev
server and workers, the real OpenAI and Anthropic SDKs against the fake LLM server (which
speaks both APIs, structured output included), local HTTP targets."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from tests.conftest import Gateway, Targets, unique, wait_until
from tests.e2e.test_rerun import ended
from tests.fakes.llm_server import FakeLLMServer

LABEL_SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["fruit", "vegetable"]}},
    "required": ["label"],
    "additionalProperties": False,
}


def tokens(usage: dict[str, Any]) -> dict[str, Any]:
    """The token counts of a step's or run's `usage` (its cost is checked in test_llm_costs)."""
    return {"input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"]}


def pipeline(steps: list[dict[str, Any]], mode: str = "durable") -> dict[str, Any]:
    return {
        "workflow_id": unique("llm-dag"),
        "original_input": {"items": ["apple", "pear"]},
        "STEPS_CONFIG": steps,
        "PIPELINE_SETTINGS": {
            "execution": {"mode": mode},
            "error_handling": {"max_retries": 1, "retry_delay": 0.1},
            "timeouts": {"step_timeout": 20},
        },
    }


def classify_step(**llm: Any) -> dict[str, Any]:
    return {
        "step_name": "classify",
        "usid": "u-classify",
        "type": "llm",
        "dependencies": ["fetch"],
        "outputs": ["classify"],
        "llm": {
            "provider": "openai",
            "model": "gpt-test",
            "system": "You sort shopping lists.",
            "prompt": "Classify these items: {{fetch_result.json.items}}",
            "max_tokens": 50,
            "output_schema": LABEL_SCHEMA,
            **llm,
        },
    }


@pytest.mark.parametrize("mode", ["durable", "fast"])
async def test_llm_and_instructions_steps_run_between_http_steps(
    llm_gateway: Gateway, fake_llm: FakeLLMServer, targets: Targets, mode: str
):
    key = unique("report")
    fake_llm.when("Classify these items", provider="openai").reply_json(
        {"label": "fruit"}, usage=(7, 3)
    )
    fake_llm.when("Describe the fruit", provider="anthropic").reply_json(
        {"sentence": "Apples and pears are sweet."}, usage=(5, 4)
    )
    fake_llm.when("Shorten", provider="openai").reply("Sweet fruit.", usage=(11, 2))
    body = pipeline(
        [
            {
                "step_name": "fetch",
                "usid": "u-fetch",
                "service_url": f"{targets.url}/echo/{key}",
                "input_prep_config": {"body": {"items": "{{original_input.items}}"}},
            },
            classify_step(),
            {
                "step_name": "describe",
                "usid": "u-describe",
                "type": "llm",
                "dependencies": ["classify"],
                "llm": {
                    "provider": "anthropic",
                    "model": "claude-test",
                    "messages": [
                        {"role": "user", "content": "Describe the {{classify.json.label}}"}
                    ],
                    "output_schema": {
                        "type": "object",
                        "properties": {"sentence": {"type": "string"}},
                        "required": ["sentence"],
                    },
                },
            },
            {
                "step_name": "route",
                "usid": "u-route",
                "type": "instructions",
                "dependencies": ["describe"],
                "outputs": ["short"],
                "instructions": {
                    "context": "{{describe_result.json.sentence}}",
                    "instructions": ["Shorten this text."],
                    "model": "gpt-child",
                },
            },
            {
                "step_name": "report",
                "usid": "u-report",
                "dependencies": ["route"],
                "service_url": f"{targets.url}/record/{key}",
                "input_prep_config": {
                    "body": {"label": "{{classify.json.label}}", "summary": "{{short.output}}"}
                },
            },
        ],
        mode,
    )
    response = await llm_gateway.http.post("/execute", json=body)
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "completed", run["error"]

    classify = run["steps"]["classify"]
    assert classify["type"] == "llm"
    assert (classify["provider"], classify["model"]) == ("openai", "gpt-test")
    assert tokens(classify["usage"]) == {"input_tokens": 7, "output_tokens": 3}
    assert classify["http_status"] is None
    assert classify["result"]["json"] == {"label": "fruit"}
    assert classify["result"]["finish_reason"] == "stop"
    assert run["outputs"]["classify"]["json"] == {"label": "fruit"}

    describe = run["steps"]["describe"]
    assert (describe["provider"], describe["model"]) == ("anthropic", "claude-test")
    assert describe["result"]["json"] == {"sentence": "Apples and pears are sweet."}
    assert tokens(describe["usage"]) == {"input_tokens": 5, "output_tokens": 4}

    route = run["steps"]["route"]
    assert route["type"] == "instructions"
    assert route["result"]["output"] == "Sweet fruit."
    assert tokens(route["usage"]) == {"input_tokens": 11, "output_tokens": 2}
    assert route["child_workflow_id"] == f"{body['workflow_id']}:route"

    # Every call was made as asked: the schema as structured output, templates rendered.
    openai_call = fake_llm.requests_for(api="chat")[0]
    assert openai_call.json_schema == LABEL_SCHEMA
    assert "apple" in openai_call.prompt_text and openai_call.system == "You sort shopping lists."
    assert openai_call.json["max_completion_tokens"] == 50
    anthropic_call = fake_llm.requests_for(api="messages")[0]
    assert anthropic_call.forced_tool is not None
    assert anthropic_call.last_user_message == "Describe the fruit"
    child_call = fake_llm.requests_for(api="chat")[1]
    assert child_call.model == "gpt-child"
    assert "Apples and pears are sweet." in child_call.prompt_text

    assert targets.state.requests[key][-1]["json"] == {"label": "fruit", "summary": "Sweet fruit."}
    assert tokens(run["usage"]) == {"input_tokens": 7 + 5 + 11, "output_tokens": 3 + 4 + 2}
    assert run["usage"]["unpriced_models"] == ["claude-test", "gpt-child", "gpt-test"]

    # The child run is a child of the DAG run in Temporal (and the Web UI).
    handle = llm_gateway.engine.client.get_workflow_handle(route["child_workflow_id"])
    child = await handle.describe()
    assert child.workflow_type == "InstructionWorkflow"
    assert child.parent_id == body["workflow_id"]
    assert child.status == WorkflowExecutionStatus.COMPLETED

    # An llm step is a regular activity in every mode (never a local one, never a segment).
    history = await llm_gateway.engine.client.get_workflow_handle(
        body["workflow_id"]
    ).fetch_history()
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled.count("call_llm") == 2

    # The child is an instruction run the gateway reads like any other.
    child_view = (await llm_gateway.http.get(f"/runs/{route['child_workflow_id']}")).json()
    assert child_view["status"] == "complete"
    assert child_view["output"] == "Sweet fruit."

    # The state a client reads later says the same.
    again = (await llm_gateway.http.get(f"/runs/{body['workflow_id']}")).json()
    assert again["usage"] == run["usage"]
    assert again["steps"]["classify"]["provider"] == "openai"

    # A rerun of the last step saves every token, the child run's among them.
    asked = len(fake_llm.requests)
    response = await llm_gateway.http.post(
        f"/runs/{body['workflow_id']}/rerun", json={"from_step": "report"}
    )
    assert response.status_code == 202, response.text
    rerun = await ended(llm_gateway, response.json()["workflow_id"])
    assert rerun["status"] == "completed", rerun["error"]
    assert rerun["reuse"]["tokens_saved"] == (7 + 3) + (5 + 4) + (11 + 2)
    assert (rerun["usage"]["input_tokens"], rerun["usage"]["output_tokens"]) == (0, 0)
    assert len(fake_llm.requests) == asked


async def test_an_answer_off_the_schema_fails_the_step_with_invalid_model_output(
    llm_gateway: Gateway, fake_llm: FakeLLMServer, targets: Targets
):
    fake_llm.when("Classify these items").reply_json({"label": "mineral"})
    body = pipeline(
        [
            {
                "step_name": "fetch",
                "usid": "u-fetch",
                "service_url": f"{targets.url}/echo/{unique('k')}",
                "input_prep_config": {"body": {"items": "{{original_input.items}}"}},
            },
            classify_step(),
        ]
    )
    response = await llm_gateway.http.post("/execute", json=body)
    run = response.json()
    assert run["status"] == "failed"
    error = run["steps"]["classify"]["error"]
    assert error["type"] == "InvalidModelOutput"
    assert "'mineral' is not one of ['fruit', 'vegetable']" in error["message"]
    assert "$.label" in error["message"]
    # Not retried: the model was asked for the schema, then asked twice to correct itself.
    assert len(fake_llm.requests) == 3
    assert run["error"]["type"] == "InvalidModelOutput"


async def test_cancelling_the_run_cancels_its_child_instruction_run(
    llm_gateway: Gateway, fake_llm: FakeLLMServer
):
    fake_llm.when("Think slowly").reply("done", delay=60)
    body = pipeline(
        [
            {
                "step_name": "think",
                "usid": "u-think",
                "type": "instructions",
                "instructions": {"context": "{{original_input}}", "instructions": ["Think slowly"]},
            }
        ]
    )
    started = await llm_gateway.http.post("/execute", params={"wait": "false"}, json=body)
    assert started.status_code in (200, 202), started.text
    child_id = f"{body['workflow_id']}:think"
    await fake_llm.wait_for_requests(1)
    cancelled = await llm_gateway.http.post(f"/runs/{body['workflow_id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    child = llm_gateway.engine.client.get_workflow_handle(child_id)

    async def child_cancelled() -> bool:
        return (await child.describe()).status == WorkflowExecutionStatus.CANCELED

    await wait_until(child_cancelled)

    async def run_ended() -> dict[str, Any] | None:
        run = (await llm_gateway.http.get(f"/runs/{body['workflow_id']}")).json()
        return run if run["status"] != "running" else None

    run = await wait_until(run_ended, interval=0.1)
    assert run["status"] == "cancelled", run
    assert run["steps"]["think"]["status"] == "cancelled"


async def test_a_prompt_naming_no_step_output_is_a_422(llm_gateway: Gateway, targets: Targets):
    body = pipeline(
        [
            {"step_name": "fetch", "usid": "u-fetch", "service_url": f"{targets.url}/echo/x"},
            classify_step(prompt="Classify {{missing.text}}"),
        ]
    )
    response = await llm_gateway.http.post("/execute", json=body)
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "STEPS_CONFIG", 1, "llm", "prompt"]
    assert "{{missing.text}} names no variable" in problem["msg"]


async def test_a_failing_sibling_cancels_the_child_run_and_fails_the_run(
    llm_gateway: Gateway, fake_llm: FakeLLMServer, targets: Targets
):
    fake_llm.when("Think slowly").reply("done", delay=60)
    body = pipeline(
        [
            {
                "step_name": "think",
                "usid": "u-think",
                "type": "instructions",
                "instructions": {"context": "{{original_input}}", "instructions": ["Think slowly"]},
            },
            {
                "step_name": "wait",
                "usid": "u-wait",
                "service_url": f"{targets.url}/slow/{unique('k')}?ms=1000",
            },
            {
                "step_name": "refused",
                "usid": "u-refused",
                # After `wait`, so the child run is under way when this step fails.
                "dependencies": ["wait"],
                "service_url": f"{targets.url}/reflect/400",
            },
        ]
    )
    response = await llm_gateway.http.post("/execute", json=body)
    run = response.json()
    assert run["status"] == "failed"
    assert run["error"]["step_name"] == "refused"
    assert run["steps"]["think"]["status"] == "cancelled"
    child = llm_gateway.engine.client.get_workflow_handle(f"{body['workflow_id']}:think")
    assert (await child.describe()).status == WorkflowExecutionStatus.CANCELED
