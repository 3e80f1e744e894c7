"""The browser tests' fixtures: a gateway that needs an API key (the page asks for it once),
in front of the real dev server and workers, and a fresh headless Chromium per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.chromium import chromium
from tests.browser.pages import RunPage
from tests.conftest import Engine, Gateway
from tests.fakes.targets import serve

API_KEY = "browser-key-0123456789abcdef"


@pytest.fixture
async def keyed_gateway(dev_engine: Engine) -> AsyncIterator[Gateway]:
    """The real gateway over HTTP with one tenant, `ui`, whose key is `API_KEY`; its `http`
    client sends the key."""
    from gateway.app import create_app

    settings = dev_engine.settings.model_copy(update={"gateway_api_keys": [f"ui:{API_KEY}"]})
    auth = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        serve(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=60, headers=auth) as http,
    ):
        yield Gateway(url, http, dev_engine)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def page(browser: WebDriver, keyed_gateway: Gateway) -> RunPage:
    return RunPage(browser, keyed_gateway.url)
