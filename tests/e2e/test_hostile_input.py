"""Hostile and absurd input through the real gateway: every class gets a 422 (or a failed
step) at once, never a 500, a hang, or a run that can never close."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.conftest import Gateway, Targets, unique, wait_until

#: Wall-clock bound for one refused request (the work itself is milliseconds; the slack is
#: for a 2-core CI machine running servers beside the test).
PROMPT = 2.0


def pipeline(**overrides: Any) -> dict[str, Any]:
    step = {"step_name": "a", "usid": "u1", "service_url": "https://example.com/a"}
    step.update(overrides.pop("step", {}))
    return {"workflow_id": unique("hostile"), "STEPS_CONFIG": [step], **overrides}


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


async def refused(gateway: Gateway, path: str, body: Any) -> list[dict[str, Any]]:
    started = time.monotonic()
    content = body if isinstance(body, str) else json.dumps(body)
    response = await gateway.http.post(
        path, content=content, headers={"content-type": "application/json"}
    )
    assert time.monotonic() - started < PROMPT
    assert response.status_code == 422, response.text
    detail: list[dict[str, Any]] = response.json()["detail"]
    return detail


async def test_json_nested_beyond_reason_is_refused_before_parsing(gateway: Gateway) -> None:
    detail = await refused(gateway, "/execute", "[" * 100_000 + "]" * 100_000)
    assert "nested" in detail[0]["msg"]


async def test_input_data_nested_600_deep_is_refused(gateway: Gateway) -> None:
    # It used to fail at start_workflow (a 500); no such body is even parsed now.
    detail = await refused(gateway, "/execute", pipeline(input_data=nested(600)))
    assert "nested more than" in detail[0]["msg"]


async def test_input_data_deeper_than_a_run_can_carry_is_refused_naming_the_field(
    gateway: Gateway,
) -> None:
    detail = await refused(gateway, "/execute", pipeline(input_data=nested(70)))
    assert detail[0]["loc"][:2] == ["body", "input_data"]
    assert "nested more than 64 levels" in detail[0]["msg"]


@pytest.mark.parametrize("spaces", [4_000, 400_000])
async def test_placeholders_that_made_the_old_regex_cubic_are_read_at_once(
    gateway: Gateway, spaces: int
) -> None:
    # Unclosed (plain text) and closed (names no variable): the old regex took 50 s on 4,000.
    headers = {"open": "{{" + " " * spaces, "closed": "{{" + " " * spaces + "nothing}}"}
    detail = await refused(
        gateway, "/execute", pipeline(step={"headers": headers, "method": "FETCH"})
    )
    messages = " ".join(item["msg"] for item in detail)
    assert "method 'FETCH'" in messages
    assert "{{nothing}} names no variable" in messages


@pytest.mark.parametrize("step", [{"timeout": 1e17}, {"retry_delay": 1e17}, {"max_retries": 10**9}])
async def test_numbers_past_their_bounds_are_refused(gateway: Gateway, step: dict[str, Any]):
    detail = await refused(gateway, "/execute", pipeline(step=step))
    assert detail[0]["loc"][:4] == ["body", "STEPS_CONFIG", 0, next(iter(step))]


async def test_a_condition_nested_2000_deep_is_refused(gateway: Gateway) -> None:
    expression = "(" * 2000 + "result is empty" + ")" * 2000
    body = {"context": "c", "instructions": [{"expression": expression, "mode": "deterministic"}]}
    detail = await refused(gateway, "/", body)
    assert "expression" in json.dumps(detail)


async def test_a_condition_nested_40_deep_is_refused_by_the_parser(gateway: Gateway) -> None:
    expression = "not " * 40 + "result is empty"
    body = {"context": "c", "instructions": [{"expression": expression, "mode": "deterministic"}]}
    detail = await refused(gateway, "/", body)
    assert "nested deeper than 32" in detail[0]["msg"]


@pytest.mark.parametrize("field", ["timeout", "retryDelay"])
async def test_instruction_times_past_their_bounds_are_refused(gateway: Gateway, field: str):
    endpoint = {"type": "endpoint", "apiUrl": "https://example.com", field: 1e17}
    detail = await refused(gateway, "/", {"context": "c", "instructions": [endpoint]})
    assert detail[0]["msg"].startswith(f"instructions[0].{field}")


async def test_an_amplified_request_fails_its_step_not_the_worker(
    gateway: Gateway, targets: Targets
) -> None:
    key = unique("amp")
    body = pipeline(
        input_data={"big": "x" * 100_000},
        step={
            "service_url": f"{targets.url}/echo/{key}",
            "input_prep_config": {"body": {"copies": ["{{big}}"] * 1000}},
        },
    )
    started = time.monotonic()
    response = await gateway.http.post("/execute", json=body)
    assert time.monotonic() - started < 10
    result = response.json()
    assert result["status"] == "failed"
    assert result["error"]["type"] == "TemplateError"
    assert "larger than" in result["error"]["message"]
    assert targets.state.calls[key] == 0


async def test_a_retry_after_of_three_years_does_not_park_the_step(
    gateway: Gateway, targets: Targets
) -> None:
    key = unique("parked")
    body = pipeline(
        step={"service_url": f"{targets.url}/status/{key}/503?retry_after=99999999"},
        PIPELINE_SETTINGS={"error_handling": {"max_retries": 1, "retry_delay": 0.05}},
    )
    response = await gateway.http.post("/execute?wait=false", json=body)
    assert response.status_code == 202

    async def failed() -> dict[str, Any] | None:
        status = (await gateway.http.get(f"/runs/{body['workflow_id']}")).json()
        return status if status["status"] == "failed" else None

    # The policy's longest interval (32 × 0.05 s) caps the wait, not the header.
    final = await wait_until(failed, timeout=20)
    assert final["steps"]["a"]["attempts"] == 2


async def test_a_json_content_type_in_any_spelling_is_depth_checked(gateway: Gateway) -> None:
    body = pipeline(input_data=nested(300))
    response = await gateway.http.post(
        "/execute", content=json.dumps(body), headers={"content-type": "Application/JSON"}
    )
    assert response.status_code == 422, response.text
    assert "nested more than" in response.json()["detail"][0]["msg"]
    # Refused at the door: no run was started that could retry a task.
    assert (await gateway.http.get(f"/runs/{body['workflow_id']}")).status_code == 404


async def test_a_deep_extra_key_under_input_prep_config_never_reaches_a_run(
    gateway: Gateway,
) -> None:
    # Pipelines are strict: an extra key is refused as unknown, however deep its value, so
    # nothing unchecked travels into the workflow's input.
    body = pipeline(step={"input_prep_config": {"extra": nested(70)}})
    detail = await refused(gateway, "/execute", body)
    assert detail[0]["loc"] == ["body", "STEPS_CONFIG", 0, "input_prep_config", "extra"]
    assert detail[0]["type"] == "extra_forbidden"
