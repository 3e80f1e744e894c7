"""The run page (`/ui/`) in a real headless Chromium, against the real gateway, dev server,
workers and targets: what a person sees of a run, live, and what they can do from it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.browser.conftest import API_KEY
from tests.browser.pages import RunPage, example_pipeline
from tests.conftest import Gateway, Targets, unique, wait_until
from tests.fakes.targets import serve

pytestmark = pytest.mark.browser


class Gate:
    """A target whose calls wait until the test opens the gate: steps that stay running for
    as long as the test needs to see them so."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.waiting = 0

    async def call(self, request: Request) -> JSONResponse:
        self.waiting += 1
        await self.open.wait()
        return JSONResponse({"through": request.path_params["name"]})


@pytest.fixture
async def gate() -> AsyncIterator[tuple[Gate, str]]:
    gate = Gate()
    app = Starlette(routes=[Route("/gate/{name}", gate.call, methods=["GET", "POST"])])
    async with serve(app) as url:
        yield gate, url
        gate.open.set()


async def start(gateway: Gateway, pipeline: dict[str, Any]) -> str:
    started = await gateway.http.post("/execute?wait=false", json=pipeline)
    assert started.status_code == 202, started.text
    workflow_id: str = pipeline["workflow_id"]
    return workflow_id


async def ended(gateway: Gateway, workflow_id: str) -> dict[str, Any]:
    async def final() -> dict[str, Any] | None:
        run: dict[str, Any] = (await gateway.http.get(f"/runs/{workflow_id}")).json()
        return run if run["status"] in ("completed", "failed", "cancelled") else None

    found: dict[str, Any] = await wait_until(final, timeout=60)
    return found


async def test_the_example_pipeline_shows_its_dag_with_each_final_status(
    page: RunPage, keyed_gateway: Gateway, tmp_path: Path
) -> None:
    from examples.demo_service import app as demo_app

    async with serve(demo_app) as demo_url:
        pipeline = example_pipeline(demo_url)
        workflow_id = pipeline["workflow_id"]
        run = (await keyed_gateway.http.post("/execute", json=pipeline)).json()
    assert run["status"] == "completed"

    await page.open(f"/ui/runs/{workflow_id}")
    # The page holds no data: it asks for the key, once, and then draws the run.
    await page.enter_key(API_KEY)
    steps = ["fetch", "summarize", "keywords", "flaky_check", "report"]
    await page.statuses_become(dict.fromkeys(steps, "completed"))
    edges = await page.call(
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('path.edge')]"
            ".map((e) => e.dataset.from + '>' + e.dataset.to).sort();"
        )
    )
    assert edges == sorted(
        ["fetch>summarize", "fetch>keywords", "summarize>report", "keywords>report"]
        + ["flaky_check>report"]
    )
    # Nodes by level: a dependency is drawn left of the step that waits for it, and a step
    # that waits for none is in the first column.
    x = await page.call(
        lambda d: d.execute_script(
            "return Object.fromEntries([...document.querySelectorAll('g.node')].map((n) =>"
            " [n.dataset.step, n.getBoundingClientRect().left]));"
        )
    )
    assert x["fetch"] < x["summarize"] == x["keywords"] < x["report"]
    assert x["flaky_check"] == x["fetch"]
    # The retried step says so on its node, and its panel has its request and attempts.
    assert "2 attempts" in await page.text('g.node[data-step="flaky_check"] .detail')
    await page.click('g.node[data-step="flaky_check"]')
    panel = await page.until(
        lambda d: d.find_element("id", "panel").text or None, "the flaky_check panel"
    )
    assert "attempts\n2" in panel
    assert f"POST {demo_url}/flaky/{{{{original_input}}}}" in panel
    assert "completed" in await page.text("#run-status")
    await page.screenshot(tmp_path / "example-run.png")


async def test_a_running_fan_out_changes_status_live(
    page: RunPage, keyed_gateway: Gateway, gate: tuple[Gate, str], tmp_path: Path
) -> None:
    valve, url = gate
    branches = [f"branch_{n}" for n in range(4)]
    pipeline = {
        "workflow_id": unique("fanout"),
        "STEPS_CONFIG": [
            {"step_name": "split", "usid": "u-split", "service_url": f"{url}/gate/split"},
            *(
                {
                    "step_name": name,
                    "usid": f"u-{name}",
                    "service_url": f"{url}/gate/{name}",
                    "dependencies": ["split"],
                }
                for name in branches
            ),
            {
                "step_name": "join",
                "usid": "u-join",
                "service_url": f"{url}/gate/join",
                "dependencies": branches,
            },
        ],
    }
    workflow_id = await start(keyed_gateway, pipeline)
    await page.open(f"/ui/runs/{workflow_id}")
    await page.enter_key(API_KEY)
    # `split` waits at the gate: the page, following the run, shows it running.
    await page.statuses_become(
        {"split": "running", **dict.fromkeys(branches, "pending"), "join": "pending"}
    )
    await page.until(lambda d: d.find_element("id", "live").is_displayed(), "the live mark")
    await page.screenshot(tmp_path / "fan-out-running.png")
    valve.open.set()
    # The same page, never reloaded, sees the fan-out and the join through to the end.
    await page.statuses_become(
        {"split": "completed", **dict.fromkeys(branches, "completed"), "join": "completed"}
    )
    await page.until(
        lambda d: d.find_element("id", "run-status").text == "completed", "the run completed"
    )
    await page.until(lambda d: not d.find_element("id", "live").is_displayed(), "the stream end")
    await page.screenshot(tmp_path / "fan-out-completed.png")


async def test_a_failed_steps_error_shows_in_its_panel(
    page: RunPage, keyed_gateway: Gateway, targets: Targets, tmp_path: Path
) -> None:
    key = unique("k")
    pipeline = {
        "workflow_id": unique("failing"),
        "STEPS_CONFIG": [
            {"step_name": "lookup", "usid": "u1", "service_url": f"{targets.url}/echo/{key}"},
            {
                "step_name": "charge",
                "usid": "u2",
                "service_url": f"{targets.url}/status/{key}-notify/404",
                "dependencies": ["lookup"],
            },
            {
                "step_name": "receipt",
                "usid": "u3",
                "service_url": f"{targets.url}/echo/{key}",
                "dependencies": ["charge"],
            },
        ],
    }
    await start(keyed_gateway, pipeline)
    run = await ended(keyed_gateway, pipeline["workflow_id"])
    assert run["status"] == "failed"
    error = run["steps"]["charge"]["error"]

    await page.open(f"/ui/runs/{pipeline['workflow_id']}")
    await page.enter_key(API_KEY)
    statuses = await page.until(
        lambda d: (
            (s := d.execute_script("return document.querySelectorAll('g.node').length"))
            and s == 3
            and d.execute_script(
                "return Object.fromEntries([...document.querySelectorAll('g.node')]"
                ".map((n) => [n.dataset.step, n.dataset.status]));"
            )
        ),
        "three nodes",
    )
    assert statuses["lookup"] == "completed"
    assert statuses["charge"] == "failed"
    assert statuses["receipt"] == run["steps"]["receipt"]["status"] != "completed"
    await page.click('g.node[data-step="charge"]')
    shown = await page.until(
        lambda d: d.find_element("css selector", "#panel .block.error pre").text,
        "the error in the panel",
    )
    assert shown == f"{error['type']} (HTTP 404): {error['message']}"
    assert "Rerun from this step" in await page.text("#panel")
    await page.screenshot(tmp_path / "failed-step.png")


async def test_the_list_page_lists_the_tenants_runs_newest_first(
    page: RunPage, keyed_gateway: Gateway, targets: Targets, tmp_path: Path
) -> None:
    key = unique("k")
    ids = []
    for _ in range(2):
        workflow_id = unique("listed")
        step = {"step_name": "a", "usid": "u1", "service_url": f"{targets.url}/echo/{key}"}
        run = await keyed_gateway.http.post(
            "/execute", json={"workflow_id": workflow_id, "STEPS_CONFIG": [step]}
        )
        assert run.json()["status"] == "completed"
        ids.append(workflow_id)

    # Listed by Temporal's visibility store, which catches up a moment after a run ends.
    async def listed() -> list[str] | None:
        runs = (await keyed_gateway.http.get("/runs")).json()
        order = [r["workflow_id"] for r in runs if r["workflow_id"] in ids]
        return order if len(order) == 2 else None

    assert await wait_until(listed, timeout=60) == ids[::-1]
    await page.open("/ui/")
    await page.enter_key(API_KEY)
    rows = await page.until(
        lambda d: (
            [
                row.get_attribute("data-run")
                for row in d.find_elements("css selector", "#runs tbody tr")
                if row.get_attribute("data-run") in ids
            ]
            or None
        ),
        "the runs",
    )
    assert rows == ids[::-1]
    newest = f'#runs tr[data-run="{ids[1]}"]'
    assert "completed" in await page.text(newest)
    await page.screenshot(tmp_path / "runs.png")
    await page.click(f"{newest} a")
    await page.statuses_become({"a": "completed"})
    assert await page.text("#run-id") == ids[1]


async def test_a_waiting_approval_is_approved_from_the_page(
    page: RunPage, keyed_gateway: Gateway, targets: Targets, tmp_path: Path
) -> None:
    key = unique("k")
    pipeline = {
        "workflow_id": unique("approve"),
        "input_data": {"title": "Spring sale"},
        "STEPS_CONFIG": [
            {"step_name": "draft", "usid": "u1", "service_url": f"{targets.url}/echo/{key}"},
            {
                "step_name": "review",
                "usid": "u2",
                "type": "approval",
                "dependencies": ["draft"],
                "approval": {"message": "Publish {{input_data.title}}?"},
            },
            {
                "step_name": "publish",
                "usid": "u3",
                "service_url": f"{targets.url}/record/{key}",
                "method": "POST",
                "dependencies": ["review"],
                "input_prep_config": {"body": {"channel": "{{review_result.data.channel}}"}},
            },
        ],
    }
    workflow_id = await start(keyed_gateway, pipeline)
    await page.open(f"/ui/runs/{workflow_id}")
    await page.enter_key(API_KEY)
    await page.statuses_become({"draft": "completed", "review": "waiting", "publish": "pending"})
    await page.click('g.node[data-step="review"]')
    await page.click("#approval-data")
    await page.call(
        lambda d: d.find_element("id", "approval-data").send_keys('{"channel": "email"}')
    )
    await page.call(lambda d: d.find_element("id", "approval-comment").send_keys("looks good"))
    await page.screenshot(tmp_path / "approval-waiting.png")
    await page.click("#approve")
    await page.statuses_become(
        {"draft": "completed", "review": "completed", "publish": "completed"}
    )
    run = await ended(keyed_gateway, workflow_id)
    assert run["status"] == "completed"
    assert run["steps"]["review"]["result"]["data"] == {"channel": "email"}
    assert targets.state.requests[key][-1]["json"] == {"channel": "email"}
    await page.screenshot(tmp_path / "approval-approved.png")


async def test_an_instruction_run_shows_its_queue_and_the_jump_it_took(
    page: RunPage, keyed_gateway: Gateway, targets: Targets, tmp_path: Path
) -> None:
    echo = f"{targets.url}/echo/{unique('k')}"
    condition = {"expression": "result contains 'GET'", "ifTrue": [2], "ifFalse": [1]}
    started = await keyed_gateway.http.post(
        "/",
        json={
            "context": "ctx",
            "instructions": [
                {"type": "endpoint", "apiUrl": echo, "condition": condition},
                {"type": "endpoint", "apiUrl": echo},
                {"type": "endpoint", "apiUrl": echo},
            ],
        },
    )
    assert started.status_code == 200, started.text
    instance_id = started.json()["instanceId"]

    async def finished() -> dict[str, Any] | None:
        run: dict[str, Any] = (await keyed_gateway.http.get(f"/runs/{instance_id}")).json()
        return run if run["status"] in ("complete", "errored") else None

    run = await wait_until(finished, timeout=60)
    assert run["status"] == "complete"
    assert run["executionOrder"] == [0, 2]

    await page.open(f"/ui/runs/{instance_id}")
    await page.enter_key(API_KEY)
    queue = """return [...document.querySelectorAll('#queue li')].map((item) => [item.dataset.step,
        item.dataset.status, [...item.querySelectorAll('.jump')].map((jump) =>
        jump.dataset.to + (jump.classList.contains('taken') ? ' taken' : ''))]);"""
    expected = [
        ["0", "completed", ["2 taken", "1"]],
        ["1", run["steps"][1]["status"], []],
        ["2", "completed", []],
    ]
    await page.until(lambda d: d.execute_script(queue) == expected, f"the queue {expected}")
    assert "#2 run" in await page.text('#queue li[data-step="2"] .state')
    await page.click('#queue li[data-step="0"]')
    panel = await page.until(lambda d: d.find_element("id", "panel").text or None, "the panel")
    assert "may jump to\n2, 1" in panel
    assert "condition\ntrue → 2" in panel
    await page.screenshot(tmp_path / "instruction-queue.png")


async def test_a_run_is_paused_resumed_and_cancelled_from_its_page(
    page: RunPage, keyed_gateway: Gateway, gate: tuple[Gate, str], tmp_path: Path
) -> None:
    _, url = gate
    pipeline = {
        "workflow_id": unique("controlled"),
        "STEPS_CONFIG": [
            {"step_name": "first", "usid": "u1", "service_url": f"{url}/gate/first"},
            {
                "step_name": "second",
                "usid": "u2",
                "service_url": f"{url}/gate/second",
                "dependencies": ["first"],
            },
        ],
    }
    workflow_id = await start(keyed_gateway, pipeline)
    await page.open(f"/ui/runs/{workflow_id}")
    await page.enter_key(API_KEY)
    await page.statuses_become({"first": "running", "second": "pending"})
    await page.click("#pause")
    # Paused: the step that has not started says so, and the page offers to resume.
    await page.statuses_become({"first": "running", "second": "paused"})
    assert await page.text("#run-status") == "paused"
    await page.screenshot(tmp_path / "paused.png")
    await page.click("#resume")
    await page.statuses_become({"first": "running", "second": "pending"})
    await page.click("#cancel")
    await page.until(
        lambda d: d.find_element("id", "run-status").text == "cancelled", "the run cancelled"
    )
    run = await ended(keyed_gateway, workflow_id)
    assert run["status"] == "cancelled"
    await page.screenshot(tmp_path / "cancelled.png")


async def test_a_failed_run_is_rerun_from_a_step_and_the_page_follows_the_new_run(
    page: RunPage, keyed_gateway: Gateway, targets: Targets, tmp_path: Path
) -> None:
    key = unique("k")
    pipeline = {
        "workflow_id": unique("rerun"),
        "STEPS_CONFIG": [
            {"step_name": "fetch", "usid": "u1", "service_url": f"{targets.url}/echo/{key}"},
            {
                "step_name": "notify",
                "usid": "u2",
                "service_url": f"{targets.url}/status/{key}-notify/404",
                "dependencies": ["fetch"],
            },
        ],
    }
    await start(keyed_gateway, pipeline)
    assert (await ended(keyed_gateway, pipeline["workflow_id"]))["status"] == "failed"
    await page.open(f"/ui/runs/{pipeline['workflow_id']}")
    await page.enter_key(API_KEY)
    await page.statuses_become({"fetch": "completed", "notify": "failed"})
    await page.click('g.node[data-step="notify"]')
    await page.click("#panel button.rerun")
    # The new run's page: `fetch` taken from the failed run, `notify` called again.
    rerun_id = f"{pipeline['workflow_id']}.rerun-1"
    await page.until(lambda d: d.find_element("id", "run-id").text == rerun_id, "the rerun")
    await page.statuses_become({"fetch": "reused", "notify": "failed"})
    assert (targets.state.calls[key], targets.state.calls[f"{key}-notify"]) == (1, 2)
    await page.click('g.node[data-step="fetch"]')
    panel = await page.until(lambda d: d.find_element("id", "panel").text or None, "the panel")
    assert f"reused from\n{pipeline['workflow_id']}" in panel
    await page.screenshot(tmp_path / "rerun.png")
