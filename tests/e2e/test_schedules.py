"""Schedules through the real gateway, on the real dev server (the time-skipping server runs
no schedules): runs start when due and complete, overlap, pause, trigger, backfill, tenancy
and validation at creation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import ScheduleActionStartWorkflow

from gateway.app import create_app
from gateway.client import AsyncWorkflowStationClient, NotFound
from gateway.schedule_models import ScheduleView
from tests.conftest import Engine, Gateway, Targets, unique, wait_until
from tests.e2e.test_cli import invoke
from tests.e2e.test_tenancy import ACME, BETA, auth
from tests.fakes.targets import serve

#: Schedules take a few seconds a run: their tests wait on conditions with room to spare.
SCHEDULE_WAIT = 90.0


@pytest.fixture
async def http(dev_engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway, as a tenant of this test's own (ACME's key; BETA's is another tenant's):
    its schedules are only the ones the test creates."""
    keys = [f"{unique('acme')}:{ACME}", f"{unique('beta')}:{BETA}"]
    settings = dev_engine.settings.model_copy(
        update={"gateway_api_keys": keys, "tenant_max_schedules": 3}
    )
    async with (
        serve(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=60, headers=auth(ACME)) as client,
    ):
        yield client


def pipeline(url: str, method: str = "GET", timeout: float | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {
        "step_name": "fetch",
        "usid": "u1",
        "service_url": url,
        "method": method,
        "outputs": ["page"],
    }
    if timeout is not None:
        step["timeout"] = timeout
    return {"namespace": "nightly", "STEPS_CONFIG": [step]}


def schedule(schedule_id: str, body: dict[str, Any], **timing: Any) -> dict[str, Any]:
    return {"schedule_id": schedule_id, "pipeline": body, **timing}


async def create(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/schedules", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def describe(http: httpx.AsyncClient, schedule_id: str) -> dict[str, Any]:
    response = await http.get(f"/schedules/{schedule_id}")
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


async def test_an_interval_schedule_starts_runs_that_complete_and_read_as_runs(
    http: httpx.AsyncClient, targets: Targets
) -> None:
    schedule_id = unique("every-5s")
    key = unique("k")
    created = await create(
        http, schedule(schedule_id, pipeline(f"{targets.url}/slow/{key}?ms=0"), interval_seconds=5)
    )
    assert created["interval_seconds"] == 5
    assert created["overlap"] == "skip"
    assert created["paused"] is False
    assert created["next_action_times"]
    assert created["recent_runs"] == []

    async def two_completed() -> list[dict[str, Any]] | None:
        runs = (await describe(http, schedule_id))["recent_runs"]
        done = [run for run in runs if run["status"] == "completed"]
        return done if len(done) >= 2 else None

    done = await wait_until(two_completed, timeout=SCHEDULE_WAIT, interval=0.5)
    for run in done:
        # Named by the schedule and the time it was due, and read like any run of the tenant.
        assert run["workflow_id"].startswith(f"{schedule_id}-")
        status = (await http.get(f"/runs/{run['workflow_id']}")).json()
        assert status["status"] == "completed"
        assert status["workflow_id"] == run["workflow_id"]
        assert status["outputs"]["page"]["key"] == key
        page = await http.get(f"/runs/{run['workflow_id']}/outputs/page")
        assert page.json()["key"] == key
    assert len({run["workflow_id"] for run in done}) == 2

    async def listed() -> bool:
        runs = (await http.get("/runs")).json()
        ids = {run["workflow_id"] for run in runs}
        return all(run["workflow_id"] in ids for run in done)

    await wait_until(listed, timeout=SCHEDULE_WAIT, interval=0.5)
    # A scheduled run is rerun like any other.
    rerun = await http.post(f"/runs/{done[0]['workflow_id']}/rerun", json={"from_step": "fetch"})
    assert rerun.status_code == 202, rerun.text
    again = rerun.json()["workflow_id"]
    assert again == f"{done[0]['workflow_id']}.rerun-1"

    async def rerun_completed() -> bool:
        return bool((await http.get(f"/runs/{again}")).json()["status"] == "completed")

    await wait_until(rerun_completed, timeout=SCHEDULE_WAIT, interval=0.5)
    assert (await http.delete(f"/schedules/{schedule_id}")).status_code == 204
    assert (await http.get(f"/schedules/{schedule_id}")).status_code == 404
    # Its runs outlive it.
    assert (await http.get(f"/runs/{done[0]['workflow_id']}")).json()["status"] == "completed"


async def test_skip_overlap_starts_no_run_while_one_runs(
    http: httpx.AsyncClient, targets: Targets
) -> None:
    schedule_id = unique("skip")
    body = pipeline(f"{targets.url}/hang/{unique('k')}", method="POST", timeout=600)
    await create(http, schedule(schedule_id, body, interval_seconds=5, overlap="skip"))

    async def skipped_twice() -> dict[str, Any] | None:
        view = await describe(http, schedule_id)
        return view if view["skipped_for_overlap"] >= 2 else None

    view = await wait_until(skipped_twice, timeout=SCHEDULE_WAIT, interval=0.5)
    # The first run hangs: every later due time was skipped, none started.
    assert view["runs_started"] == 1
    [run] = view["recent_runs"]
    assert run["status"] == "running"
    assert view["running"] == [run["workflow_id"]]
    await http.delete(f"/schedules/{schedule_id}")
    assert (await http.post(f"/runs/{run['workflow_id']}/cancel")).status_code == 200


async def test_a_paused_schedule_starts_nothing_until_triggered_or_unpaused(
    http: httpx.AsyncClient, targets: Targets
) -> None:
    schedule_id = unique("paused")
    body = pipeline(f"{targets.url}/echo/{unique('k')}")
    created = await create(
        http, schedule(schedule_id, body, interval_seconds=5, paused=True, note="not yet")
    )
    assert created["paused"] is True
    assert created["note"] == "not yet"
    since = datetime.now(UTC)

    async def two_due_times_passed() -> bool:
        return datetime.now(UTC) > since + timedelta(seconds=11)

    await wait_until(two_due_times_passed, timeout=30, interval=0.5)
    assert (await describe(http, schedule_id))["runs_started"] == 0

    # Trigger starts one now, paused or not.
    triggered = (await http.post(f"/schedules/{schedule_id}/trigger")).json()
    assert triggered["paused"] is True

    async def runs_completed(count: int) -> list[dict[str, Any]] | None:
        view = await describe(http, schedule_id)
        done = [run for run in view["recent_runs"] if run["status"] == "completed"]
        return done if len(done) >= count else None

    [run] = await wait_until(lambda: runs_completed(1), timeout=SCHEDULE_WAIT, interval=0.5)
    assert run["workflow_id"].startswith(f"{schedule_id}-")

    unpaused = (await http.post(f"/schedules/{schedule_id}/unpause")).json()
    assert unpaused["paused"] is False
    await wait_until(lambda: runs_completed(2), timeout=SCHEDULE_WAIT, interval=0.5)

    # Paused again: the runs it has started stay, and no new one starts.
    paused = (await http.post(f"/schedules/{schedule_id}/pause", json={"note": "hold"})).json()
    assert paused["paused"] is True
    assert paused["note"] == "hold"
    listed = (await http.get("/schedules")).json()
    assert [item["paused"] for item in listed if item["schedule_id"] == schedule_id] == [True]
    await http.delete(f"/schedules/{schedule_id}")


async def test_backfill_starts_the_runs_of_a_past_range(
    http: httpx.AsyncClient, targets: Targets
) -> None:
    schedule_id = unique("backfill")
    body = pipeline(f"{targets.url}/echo/{unique('k')}")
    await create(http, schedule(schedule_id, body, interval_seconds=5, paused=True))
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    start = end - timedelta(seconds=15)
    response = await http.post(
        f"/schedules/{schedule_id}/backfill",
        json={"start": start.isoformat(), "end": end.isoformat()},
    )
    assert response.status_code == 200, response.text

    async def range_completed() -> list[dict[str, Any]] | None:
        runs = (await describe(http, schedule_id))["recent_runs"]
        done = [run for run in runs if run["status"] == "completed"]
        return done if len(done) >= 3 and len(done) == len(runs) else None

    done = await wait_until(range_completed, timeout=SCHEDULE_WAIT, interval=0.5)
    due = sorted(datetime.fromisoformat(run["scheduled_at"]) for run in done)
    assert all(start <= moment <= end for moment in due)
    assert len(due) >= 3
    for run, moment in zip(sorted(done, key=lambda r: r["scheduled_at"]), due, strict=True):
        assert run["workflow_id"] == f"{schedule_id}-{moment:%Y-%m-%dT%H:%M:%SZ}"

    future = await http.post(
        f"/schedules/{schedule_id}/backfill",
        json={"start": start.isoformat(), "end": (end + timedelta(hours=1)).isoformat()},
    )
    assert future.status_code == 422
    await http.delete(f"/schedules/{schedule_id}")


async def test_another_tenant_can_neither_see_nor_change_a_schedule(
    http: httpx.AsyncClient, targets: Targets
) -> None:
    schedule_id = unique("acme-only")
    body = pipeline(f"{targets.url}/echo/{unique('k')}")
    await create(http, schedule(schedule_id, body, interval_seconds=3600, paused=True))
    beta = auth(BETA)
    past = datetime.now(UTC) - timedelta(hours=1)
    for method, path, payload in [
        ("GET", f"/schedules/{schedule_id}", None),
        ("POST", f"/schedules/{schedule_id}/pause", None),
        ("POST", f"/schedules/{schedule_id}/unpause", None),
        ("POST", f"/schedules/{schedule_id}/trigger", None),
        (
            "POST",
            f"/schedules/{schedule_id}/backfill",
            {"start": past.isoformat(), "end": (past + timedelta(minutes=1)).isoformat()},
        ),
        ("DELETE", f"/schedules/{schedule_id}", None),
    ]:
        response = await http.request(method, path, json=payload, headers=beta)
        assert response.status_code == 404, (method, path, response.text)
    assert schedule_id not in {
        item["schedule_id"] for item in (await http.get("/schedules", headers=beta)).json()
    }
    view = await describe(http, schedule_id)
    assert view["paused"] is True
    assert view["runs_started"] == 0
    assert schedule_id in {item["schedule_id"] for item in (await http.get("/schedules")).json()}

    # The id is beta's own to use: a second, separate schedule.
    created = await http.post(
        "/schedules", json=schedule(schedule_id, body, interval_seconds=3600), headers=beta
    )
    assert created.status_code == 201
    assert (await describe(http, schedule_id))["paused"] is True
    for key in (ACME, BETA):
        assert (
            await http.delete(f"/schedules/{schedule_id}", headers=auth(key))
        ).status_code == 204


async def test_a_schedule_is_refused_as_its_pipeline_would_be(
    http: httpx.AsyncClient, targets: Targets
) -> None:
    url = f"{targets.url}/echo/{unique('k')}"

    async def refused(body: dict[str, Any]) -> list[dict[str, Any]]:
        response = await http.post("/schedules", json=body)
        assert response.status_code == 422, response.text
        detail: list[dict[str, Any]] = response.json()["detail"]
        return detail

    bad = pipeline(url)
    bad["STEPS_CONFIG"][0]["dependencies"] = ["nothing"]
    [problem] = await refused(schedule(unique("bad"), bad, interval_seconds=5))
    assert problem["loc"] == ["body", "pipeline", "STEPS_CONFIG", 0, "dependencies", 0]
    assert "nothing" in problem["msg"]

    typo = pipeline(url)
    typo["STEPS_CONFIG"][0]["timout"] = 5
    [problem] = await refused(schedule(unique("typo"), typo, interval_seconds=5))
    assert problem["loc"][:4] == ["body", "pipeline", "STEPS_CONFIG", 0]
    assert "did you mean 'timeout'" in problem["msg"]

    for timing in ({"cron": "* * * * *", "interval_seconds": 5}, {}):
        [problem] = await refused(schedule(unique("timing"), pipeline(url), **timing))
        assert "exactly one of cron and interval_seconds" in problem["msg"]

    renamed = {**pipeline(url), "workflow_id": "another"}
    [problem] = await refused(schedule(unique("named"), renamed, interval_seconds=5))
    assert problem["loc"] == ["body", "pipeline", "workflow_id"]

    [problem] = await refused(schedule(unique("cron"), pipeline(url), cron="every tuesday"))
    assert problem["loc"] == ["body", "cron"]
    assert (await http.get("/schedules")).json() == []


async def test_ids_and_the_tenants_limit_are_kept(
    http: httpx.AsyncClient, targets: Targets
) -> None:
    body = pipeline(f"{targets.url}/echo/{unique('k')}")
    ids = [unique("kept") for _ in range(3)]
    for schedule_id in ids:
        await create(http, schedule(schedule_id, body, cron="0 6 * * *", paused=True))
    again = await http.post("/schedules", json=schedule(ids[0], body, interval_seconds=5))
    assert again.status_code == 409
    view = await describe(http, ids[0])
    assert view["cron"] == ["0 6 * * *"]
    assert view["interval_seconds"] is None

    async def all_listed() -> bool:
        listed = {item["schedule_id"] for item in (await http.get("/schedules")).json()}
        return listed >= set(ids)

    await wait_until(all_listed, timeout=SCHEDULE_WAIT, interval=0.5)
    over = await http.post("/schedules", json=schedule(unique("over"), body, interval_seconds=5))
    assert over.status_code == 429
    assert "TENANT_MAX_SCHEDULES" in over.json()["detail"]
    for schedule_id in ids:
        assert (await http.delete(f"/schedules/{schedule_id}")).status_code == 204


async def test_the_cli_and_the_client_create_show_trigger_backfill_and_delete(
    gateway: Gateway, targets: Targets, tmp_path: Path
) -> None:
    schedule_id = unique("cli")
    body = {"workflow_id": schedule_id, **pipeline(f"{targets.url}/echo/{unique('k')}")}
    path = tmp_path / "nightly.json"
    path.write_text(json.dumps(body))

    both = await invoke(gateway, "schedule", "create", str(path), "--every", "5s", "--cron", "*")
    assert both.exit_code == 2
    assert "exactly one of --every and --cron" in both.output
    created = await invoke(gateway, "schedule", "create", str(path), "--every", "1h", "--paused")
    assert created.exit_code == 0, created.output
    assert f"{schedule_id}: every 3600s, overlap skip, paused" in created.output

    triggered = await invoke(gateway, "schedule", "trigger", schedule_id)
    assert triggered.exit_code == 0, triggered.output
    async with AsyncWorkflowStationClient(gateway.url) as client:

        async def completed() -> ScheduleView | None:
            view = await client.get_schedule(schedule_id)
            runs = view.recent_runs
            return view if runs and all(run.status == "completed" for run in runs) else None

        view = await wait_until(completed, timeout=SCHEDULE_WAIT, interval=0.5)
        [run] = view.recent_runs
        shown = await invoke(gateway, "schedule", "show", schedule_id)
        assert run.workflow_id in shown.output and "completed" in shown.output
        assert schedule_id in (await invoke(gateway, "schedule", "list")).output

        end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
        start = end - timedelta(hours=2)
        backfilled = await invoke(
            gateway,
            "schedule",
            "backfill",
            schedule_id,
            "--start",
            f"{start:%Y-%m-%dT%H:%M:%SZ}",
            "--end",
            f"{end:%Y-%m-%dT%H:%M:%SZ}",
        )
        assert backfilled.exit_code == 0, backfilled.output

        async def range_started() -> bool:
            view = await client.get_schedule(schedule_id)
            return view.runs_started >= 3

        await wait_until(range_started, timeout=SCHEDULE_WAIT, interval=0.5)
        deleted = await invoke(gateway, "schedule", "delete", schedule_id)
        assert deleted.exit_code == 0, deleted.output
        with pytest.raises(NotFound):
            await client.get_schedule(schedule_id)
    gone = await invoke(gateway, "schedule", "show", schedule_id)
    assert gone.exit_code == 2
    assert "no schedule" in gone.output


async def test_a_schedule_starts_its_runs_with_the_task_timeout_execute_would(
    http: httpx.AsyncClient, dev_engine: Engine, targets: Targets
):
    """A fast pipeline's runs get the short task timeout that keeps control within a second;
    one with a `map_over` step keeps Temporal's default, as `/execute` starts them
    (`gateway.starts.dag_task_timeout`)."""
    fast = pipeline(f"{targets.url}/echo/{unique('k')}", timeout=5)
    fast["PIPELINE_SETTINGS"] = {"execution": {"mode": "fast"}}
    mapped = json.loads(json.dumps(fast))
    mapped["STEPS_CONFIG"].append(
        {
            "step_name": "each",
            "usid": "u2",
            "dependencies": ["fetch"],
            "map_over": "{{page}}",
            "service_url": f"{targets.url}/echo/{unique('k')}",
            "timeout": 5,
        }
    )
    plain_id, mapped_id = unique("plain"), unique("mapped")
    await create(http, schedule(plain_id, fast, interval_seconds=3600, paused=True))
    await create(http, schedule(mapped_id, mapped, interval_seconds=3600, paused=True))

    async def task_timeouts() -> dict[str, timedelta | None] | None:
        # Temporal lists schedules from its visibility store, a moment behind.
        timeouts = {}
        async for listed in await dev_engine.client.list_schedules():
            for schedule_id in (plain_id, mapped_id):
                if listed.id.endswith(f"/{schedule_id}"):
                    handle = dev_engine.client.get_schedule_handle(listed.id)
                    action = (await handle.describe()).schedule.action
                    assert isinstance(action, ScheduleActionStartWorkflow)
                    timeouts[schedule_id] = action.task_timeout
        return timeouts if len(timeouts) == 2 else None

    timeouts = await wait_until(task_timeouts, timeout=SCHEDULE_WAIT)
    assert timeouts == {plain_id: timedelta(milliseconds=750), mapped_id: None}
