"""`workflow-station` against the real gateway: run (and follow), status, list, cancel, and
the exit codes a script can rely on. The commands are invoked through typer's runner in a
thread, since the gateway they call serves from this test's event loop."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from cli.commands import EXIT_CANCELLED, EXIT_FAILED, app
from tests.conftest import Gateway, Targets, unique, wait_until
from tests.fakes.cutting_proxy import CuttingProxy
from tests.fakes.targets import serve

runner = CliRunner()


async def invoke(gateway: Gateway, *args: str) -> Result:
    env = {"GATEWAY_URL": gateway.url, "COLUMNS": "140"}
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env)


def write(tmp_path: Path, payload: dict[str, Any]) -> Path:
    path = tmp_path / f"{payload['workflow_id']}.json"
    path.write_text(json.dumps(payload))
    return path


def pipeline(targets: Targets, fail: bool = False) -> dict[str, Any]:
    key = unique("cli")
    last = f"{targets.url}/status/{key}/400" if fail else f"{targets.url}/echo/{key}"
    return {
        "workflow_id": unique("cli"),
        "STEPS_CONFIG": [
            {
                "step_name": "fetch",
                "usid": "u-f",
                "service_url": f"{targets.url}/echo/{key}",
                "outputs": ["page"],
            },
            {
                "step_name": "publish",
                "usid": "u-p",
                "service_url": last,
                "dependencies": ["fetch"],
                "outputs": ["published"],
            },
        ],
    }


async def test_run_follow_draws_the_steps_and_prints_the_outputs(
    gateway: Gateway, targets: Targets, tmp_path: Path
) -> None:
    body = pipeline(targets)
    result = await invoke(gateway, "run", str(write(tmp_path, body)), "--follow")
    assert result.exit_code == 0, result.output
    assert f"started {body['workflow_id']}" in result.output
    rows = [line for line in result.output.splitlines() if "fetch" in line or "publish" in line]
    assert any("completed" in row for row in rows), result.output
    assert "2/2 steps" in result.output
    assert "outputs:" in result.output and '"published"' in result.output


async def test_run_follow_exits_1_naming_the_failed_step(
    gateway: Gateway, targets: Targets, tmp_path: Path
) -> None:
    body = pipeline(targets, fail=True)
    result = await invoke(gateway, "run", str(write(tmp_path, body)), "--follow")
    assert result.exit_code == EXIT_FAILED, result.output
    assert "step 'publish' failed" in result.output
    assert "400" in result.output


async def test_run_without_follow_starts_and_returns(
    gateway: Gateway, targets: Targets, tmp_path: Path
) -> None:
    body = pipeline(targets)
    result = await invoke(gateway, "run", str(write(tmp_path, body)))
    assert result.exit_code == 0, result.output
    assert f"workflow-station status {body['workflow_id']}" in result.output

    async def completed() -> Result | None:
        shown = await invoke(gateway, "status", body["workflow_id"])
        return shown if "completed" in shown.output.splitlines()[0] else None

    shown = await wait_until(completed)
    assert shown.exit_code == 0
    assert "fetch" in shown.output and "publish" in shown.output
    raw = await invoke(gateway, "status", body["workflow_id"], "--json")
    assert json.loads(raw.output)["outputs"]["published"]["method"] == "POST"


async def test_status_of_an_unknown_run_says_so(gateway: Gateway) -> None:
    result = await invoke(gateway, "status", unique("missing"))
    assert result.exit_code == 2
    assert "HTTP 404" in result.output


async def test_list_shows_runs_by_state(gateway: Gateway, targets: Targets, tmp_path: Path) -> None:
    body = pipeline(targets)
    assert (await gateway.http.post("/execute", json=body)).json()["status"] == "completed"

    async def listed() -> Result | None:
        # Temporal's visibility store catches up with a run's end a moment later.
        shown = await invoke(gateway, "list", "--status", "completed")
        return shown if body["workflow_id"] in shown.output else None

    shown = await wait_until(listed)
    assert shown.exit_code == 0
    assert "dag" in shown.output
    running = await invoke(gateway, "list", "--status", "running")
    assert body["workflow_id"] not in running.output
    wrong = await invoke(gateway, "list", "--status", "sleepy")
    assert wrong.exit_code == 2 and "status must be one of" in wrong.output


def hanging(targets: Targets) -> dict[str, Any]:
    return {
        "workflow_id": unique("cli-hang"),
        "STEPS_CONFIG": [
            {
                "step_name": "stuck",
                "usid": "u-s",
                "service_url": f"{targets.url}/hang/{unique('h')}",
            }
        ],
    }


async def wait_running(gateway: Gateway, workflow_id: str) -> None:
    async def step_running() -> bool:
        response = await gateway.http.get(f"/runs/{workflow_id}")
        steps = response.json().get("steps") or {} if response.status_code == 200 else {}
        return bool(steps) and steps["stuck"]["status"] == "running"

    await wait_until(step_running)


async def test_a_followed_run_that_is_cancelled_exits_130(
    gateway: Gateway, targets: Targets, tmp_path: Path
) -> None:
    body = hanging(targets)
    # One command at a time: the runner swaps the process's stdout while it runs.
    following = asyncio.create_task(invoke(gateway, "run", str(write(tmp_path, body)), "-f"))
    await wait_running(gateway, body["workflow_id"])
    assert (await gateway.http.post(f"/runs/{body['workflow_id']}/cancel")).status_code == 200
    result = await following
    assert result.exit_code == EXIT_CANCELLED, result.output
    assert "cancelled" in result.output


async def test_cancel_stops_a_running_run(gateway: Gateway, targets: Targets) -> None:
    body = hanging(targets)
    assert (await gateway.http.post("/execute?wait=false", json=body)).status_code == 202
    await wait_running(gateway, body["workflow_id"])
    cancelled = await invoke(gateway, "cancel", body["workflow_id"])
    assert cancelled.exit_code == 0, cancelled.output
    assert f"cancelling {body['workflow_id']}" in cancelled.output

    async def ended() -> Result | None:
        again = await invoke(gateway, "cancel", body["workflow_id"])
        return again if again.exit_code != 0 else None

    again = await wait_until(ended)
    assert again.exit_code == 2 and "HTTP 409" in again.output
    shown = await invoke(gateway, "status", body["workflow_id"])
    assert "cancelled" in shown.output.splitlines()[0]


async def test_run_follows_an_instruction_file(
    gateway: Gateway, targets: Targets, tmp_path: Path
) -> None:
    path = tmp_path / "instructions.json"
    key = unique("cli-instructions")
    path.write_text(
        json.dumps(
            {
                "$schema": "../schemas/instructions.schema.json",
                "context": "temporal",
                "instructions": [{"type": "endpoint", "apiUrl": f"{targets.url}/echo/{key}"}],
            }
        )
    )
    result = await invoke(gateway, "run", str(path), "--follow")
    assert result.exit_code == 0, result.output
    assert "step 0 endpoint  completed" in result.output
    assert "complete; output:" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"workflow_id": "w", "STEPS_CONFIG": [', "not valid JSON: Expecting value (line 1"),
        ('["a", "list"]', "not a pipeline: a DAG pipeline has STEPS_CONFIG"),
        ('{"steps": []}', "not a pipeline: a DAG pipeline has STEPS_CONFIG"),
    ],
)
async def test_a_file_that_is_not_a_pipeline_is_one_line_and_exit_2(
    gateway: Gateway, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text)
    for command in ("run", "validate"):
        result = await invoke(gateway, command, str(path))
        assert result.exit_code == 2, result.output
        assert result.output.count("\n") == 1, result.output
        assert f"error: {path}: {message}" in result.output
        assert "Traceback" not in result.output


async def test_validate_prints_the_plan_or_every_problem(
    gateway: Gateway, targets: Targets, tmp_path: Path
) -> None:
    body = pipeline(targets)
    valid = await invoke(gateway, "validate", str(write(tmp_path, body)))
    body["STEPS_CONFIG"][1]["dependancies"] = ["fetch"]
    body["STEPS_CONFIG"][0]["method"] = "FETCH"
    invalid = await invoke(gateway, "validate", str(write(tmp_path, body)))

    assert valid.exit_code == 0, valid.output
    assert "valid dag payload" in valid.output
    assert "no step reads output 'published'" in valid.output
    assert invalid.exit_code == EXIT_FAILED, invalid.output
    assert "STEPS_CONFIG[1].dependancies: unknown field; did you mean 'dependencies'?" in (
        invalid.output
    )
    assert "1 problem(s)" in invalid.output


async def test_run_follow_reconnects_a_dropped_event_stream(
    gateway: Gateway, targets: Targets, tmp_path: Path
) -> None:
    proxy = CuttingProxy(gateway.url, cuts=1)
    body = pipeline(targets)
    async with serve(proxy.app()) as url:
        env = {"GATEWAY_URL": url, "COLUMNS": "140"}
        args = ["run", str(write(tmp_path, body)), "--follow"]
        result = await asyncio.to_thread(runner.invoke, app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "2/2 steps" in result.output and '"published"' in result.output
    assert len(proxy.resumed_from) == 2 and proxy.resumed_from[1] is not None
