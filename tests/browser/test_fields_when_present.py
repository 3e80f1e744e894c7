"""Fields the run page shows when the gateway reports them, before every gateway does: a map
step's item counts (`items`), a step's and a run's cost (`cost_usd`, `usage.cost_usd`). A
stand-in gateway serves the real pages with runs that carry them; the real gateway's runs,
which do not yet, are the other browser tests'."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from gateway.routes import ui
from tests.browser.pages import RunPage
from tests.fakes.targets import serve

pytestmark = pytest.mark.browser

RUN: dict[str, Any] = {
    "workflow_id": "tickets",
    "status": "completed",
    "progress": {"completed": 2, "failed": 0, "total": 2},
    "execution_time_ms": 5400,
    "usage": {"input_tokens": 1200, "output_tokens": 300, "cost_usd": 0.0421},
    "steps": {
        "fetch": {"step_name": "fetch", "type": "http", "status": "completed", "attempts": 1},
        "classify": {
            "step_name": "classify",
            "type": "llm",
            "status": "completed",
            "attempts": 1,
            "items": {"total": 100, "completed": 97, "failed": 3, "running": 0},
            "item_errors": {"4": "LlmRefused: no answer"},
            "cost_usd": 0.0421,
            "usage": {"input_tokens": 1200, "output_tokens": 300},
        },
    },
}
GRAPH = {
    "engine": "dag",
    "levels": [["fetch"], ["classify"]],
    "steps": [
        {"name": "fetch", "type": "http", "dependencies": []},
        {"name": "classify", "type": "llm", "dependencies": ["fetch"]},
    ],
    "requests": {"classify": "openai/gpt-5-nano: Classify {{item}}"},
}
LISTED = {
    "workflow_id": "tickets",
    "run_id": "r1",
    "engine": "dag",
    "status": "completed",
    "started_at": "2026-12-07T10:00:00Z",
    "finished_at": "2026-12-07T10:00:05Z",
    "cost_usd": 0.0421,
}


def stand_in_gateway() -> FastAPI:
    app = FastAPI()
    app.include_router(ui.router)

    @app.get("/runs")
    async def runs() -> list[dict[str, Any]]:
        return [LISTED]

    @app.get("/runs/tickets/graph")
    async def graph() -> dict[str, Any]:
        return GRAPH

    @app.get("/runs/tickets/events")
    async def events() -> StreamingResponse:
        end = json.dumps({"status": "completed", "last": 0})
        return StreamingResponse(
            iter([f"event: end\ndata: {end}\n\n"]), media_type="text/event-stream"
        )

    @app.get("/runs/tickets")
    async def run() -> dict[str, Any]:
        return RUN

    return app


@pytest.fixture
async def stand_in(browser: Any) -> AsyncIterator[RunPage]:
    async with serve(stand_in_gateway()) as url:
        yield RunPage(browser, url)


async def test_a_map_steps_item_counts_and_costs_show_when_reported(
    stand_in: RunPage, tmp_path: Path
) -> None:
    page = stand_in
    await page.open("/ui/runs/tickets")
    await page.statuses_become({"fetch": "completed", "classify": "completed"})
    assert await page.text('g.node[data-step="classify"] .detail') == (
        "llm · 97/100 items · 3 failed"
    )
    assert "$0.0421" in await page.text("#run-summary")
    assert "1500 tokens" in await page.text("#run-summary")
    await page.click('g.node[data-step="classify"]')
    panel = await page.until(lambda d: d.find_element("id", "panel").text or None, "the panel")
    assert "items\n97 completed, 3 failed, 0 running, of 100" in panel
    assert "cost\n$0.0421" in panel
    assert "tokens\n1200 in + 300 out" in panel
    assert "LlmRefused: no answer" in panel
    await page.screenshot(tmp_path / "map-step.png")

    await page.open("/ui/")
    row = await page.until(
        lambda d: d.find_elements("css selector", '#runs tr[data-run="tickets"]'), "the run"
    )
    assert "$0.0421" in await page.call(lambda _: row[0].text)
