"""What the gateway serves the run page (`gateway/routes/ui.py`, `GET /runs/{id}/graph`),
over HTTP: pages that hold no data and need no key, a policy that lets them load and call
nothing but the gateway, and a run's graph for its own tenant only. (The page itself is
driven in a browser by tests/browser/.)"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import create_app
from gateway.routes.ui import ASSETS
from tests.conftest import Engine, Targets, unique
from tests.fakes.targets import serve

ACME = "acme-key-0123456789abcdef"
BETA = "beta-key-0123456789abcdef"


@pytest.fixture
async def http(dev_engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    settings = dev_engine.settings.model_copy(
        update={"gateway_api_keys": [f"acme:{ACME}", f"beta:{BETA}"]}
    )
    async with (
        serve(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as client,
    ):
        yield client


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_the_pages_need_no_key_and_may_use_only_the_gateway(
    http: httpx.AsyncClient,
) -> None:
    assert (await http.get("/ui")).headers["location"] == "/ui/"
    pages = {path: await http.get(path) for path in ("/ui/", "/ui/runs/shop/order-7")}
    referenced: set[str] = set()
    for path, page in pages.items():
        assert page.status_code == 200, path
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src 'self';" in policy and "connect-src 'self';" in policy
        assert "unsafe" not in policy
        assert "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        # Nothing the policy would block: no inline script, style or handler.
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), path
        assert not re.search(r"\s(style|on\w+)=", page.text), path
        referenced |= set(re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', page.text))
    assert pages["/ui/"].text != pages["/ui/runs/shop/order-7"].text
    # Every file the pages load is served, with its type, under the same policy.
    assert referenced == {"/ui/static/app.css", "/ui/static/js/list.js", "/ui/static/js/run.js"}
    for name in ASSETS:
        asset = await http.get(f"/ui/static/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["content-type"].split(";")[0] in ("text/javascript", "text/css")
        assert (
            asset.headers["content-security-policy"]
            == pages["/ui/"].headers["content-security-policy"]
        )
    # The graph library is the gateway's own copy; the scripts load nothing from elsewhere.
    assert "vendor/dagre.esm.js" in ASSETS
    for name in ASSETS:
        if name.endswith(".js") and not name.startswith("vendor/"):
            script = (await http.get(f"/ui/static/{name}")).text
            assert not re.search(r"""from\s+["']https?:""", script), name
    # Only the page's own files: nothing else of the package, however the path is spelt.
    for path in (
        "/ui/static/../routes/ui.py",
        "/ui/static/%2e%2e/routes/ui.py",
        "/ui/static/vendor/dagre.LICENSE",
        "/ui/static/nothing.js",
    ):
        assert (await http.get(path)).status_code == 404, path


async def test_a_runs_graph_is_its_tenants_alone(http: httpx.AsyncClient, targets: Targets) -> None:
    key = unique("k")
    workflow_id = unique("graph")
    pipeline = {
        "workflow_id": workflow_id,
        "STEPS_CONFIG": [
            {
                "step_name": "a",
                "usid": "1",
                "service_url": f"{targets.url}/echo/{key}?t=secret",
                "method": "GET",
            },
            {"step_name": "b", "usid": "2", "service_url": f"{targets.url}/echo/{key}"},
            {
                "step_name": "c",
                "usid": "3",
                "service_url": f"{targets.url}/echo/{key}",
                "method": "PUT",
                "dependencies": ["a", "b"],
            },
        ],
    }
    run = await http.post("/execute", json=pipeline, headers=auth(ACME))
    assert run.json()["status"] == "completed"
    path = f"/runs/{workflow_id}/graph"
    assert (await http.get(path)).status_code == 401
    assert (await http.get(path, headers=auth(BETA))).status_code == 404
    graph = (await http.get(path, headers=auth(ACME))).json()
    assert graph["engine"] == "dag"
    assert graph["levels"] == [["a", "b"], ["c"]]
    assert {s["name"]: s["dependencies"] for s in graph["steps"]} == {
        "a": [],
        "b": [],
        "c": ["a", "b"],
    }
    assert graph["requests"] == {
        "a": f"GET {targets.url}/echo/{key}?t=***",
        "b": f"POST {targets.url}/echo/{key}",
        "c": f"PUT {targets.url}/echo/{key}",
    }
    assert graph["jumps"] == {}
    assert (await http.get("/runs/no-such-run/graph", headers=auth(ACME))).status_code == 404
