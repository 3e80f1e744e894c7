"""Debian's Chromium, driven headless through its own chromedriver: the browser tests' and
`make screenshot`'s. `Service(executable_path=...)` names the driver, so selenium-manager
downloads nothing; each browser gets a fresh profile and no background traffic."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
INSTALL_HINT = "apt-get install chromium chromium-driver"
#: `require`: a machine without Chromium fails the browser tests instead of leaving them out.
REQUIRE_VARIABLE = "WORKFLOW_STATION_BROWSER_TESTS"

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def missing_binaries() -> list[str]:
    """The binaries the browser tests need that this machine lacks."""
    return [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]


def browser_tests_required() -> bool:
    return os.environ.get(REQUIRE_VARIABLE, "").strip().lower() == "require"


@contextmanager
def chromium(width: int = 1400, height: int = 820) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a profile of its own, quit on exit."""
    with tempfile.TemporaryDirectory(prefix="ws-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={width},{height}")
        driver = webdriver.Chrome(
            service=Service(executable_path=str(CHROMEDRIVER)), options=options
        )
        try:
            yield driver
        finally:
            driver.quit()
