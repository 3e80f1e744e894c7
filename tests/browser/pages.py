"""The run page as a test (or `make screenshot`) drives it: a headless Chromium's calls, each
run in a thread so the gateway serving the page in the test's event loop goes on answering,
and waits on what the page shows, with a deadline (never a sleep)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
#: Long enough for a loaded 2-core machine; a wait that passes returns at once.
WAIT_SECONDS = 60

T = TypeVar("T")

#: Each node's status, by step name, as the page shows it.
NODE_STATUSES = """return Object.fromEntries([...document.querySelectorAll('g.node')]
    .map((node) => [node.dataset.step, node.dataset.status]));"""


def example_pipeline(demo_url: str) -> dict[str, Any]:
    """`examples/dag_pipeline.json` under a fresh id, calling the demo service at `demo_url`
    (where `make dev` has it on :8001)."""
    text = (ROOT / "examples" / "dag_pipeline.json").read_text()
    pipeline: dict[str, Any] = json.loads(text.replace("http://127.0.0.1:8001", demo_url))
    pipeline.pop("$schema")
    pipeline["workflow_id"] = f"{pipeline['workflow_id']}-{uuid.uuid4().hex[:8]}"
    return pipeline


class RunPage:
    """One browser tab on the gateway at `base_url`."""

    def __init__(self, driver: WebDriver, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    async def call(self, action: Callable[[WebDriver], T]) -> T:
        return await asyncio.to_thread(action, self.driver)

    async def open(self, path: str) -> None:
        await self.call(lambda driver: driver.get(self.base_url + path))

    async def until(self, condition: Callable[[WebDriver], T], what: str) -> T:
        """What `condition` returns once it is truthy; fails naming `what` at the deadline."""
        wait = WebDriverWait(self.driver, WAIT_SECONDS, poll_frequency=0.1)
        return await asyncio.to_thread(wait.until, condition, f"the page never showed {what}")

    async def enter_key(self, key: str) -> None:
        """Answer the page's key form (it appears when a call is refused 401)."""
        field = await self.until(
            lambda driver: next(
                (e for e in driver.find_elements(By.ID, "key-input") if e.is_displayed()), None
            ),
            "the API key form",
        )
        await self.call(lambda _: field.send_keys(key))
        await self.call(
            lambda driver: driver.find_element(By.CSS_SELECTOR, "#key-form button").click()
        )

    async def node_statuses(self) -> dict[str, str]:
        statuses: dict[str, str] = await self.call(lambda d: d.execute_script(NODE_STATUSES))
        return statuses

    async def statuses_become(self, expected: dict[str, str]) -> dict[str, str]:
        """Wait until the nodes show exactly `expected`."""

        def shown(driver: WebDriver) -> dict[str, str] | None:
            statuses: dict[str, str] = driver.execute_script(NODE_STATUSES)
            return statuses if statuses == expected else None

        return await self.until(shown, f"the nodes {expected}")

    async def click(self, css: str) -> None:
        element = await self.until(
            lambda driver: next(
                (e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), None
            ),
            css,
        )
        await self.call(lambda _: element.click())

    async def text(self, css: str) -> str:
        text: str = await self.call(lambda d: d.find_element(By.CSS_SELECTOR, css).text)
        return text

    async def screenshot(self, path: Path) -> Path:
        """Save the page as it looks now to `path`, and say where."""
        await self.call(lambda driver: driver.save_screenshot(str(path)))
        print(f"screenshot: {path}")
        return path
