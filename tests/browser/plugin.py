"""The `browser` mark, and what a machine without Chromium does with it: the browser tests
are deselected at collection, with one line at the end saying how to install it, unless
`WORKFLOW_STATION_BROWSER_TESTS=require` (as `.ci/run` sets), when the session fails at once.

Loaded by `tests/conftest.py`, so its hooks see every item and the line reaches the terminal
of the process that prints it (the controller under xdist).
"""

from __future__ import annotations

import pytest

from tests.browser.chromium import (
    INSTALL_HINT,
    REQUIRE_VARIABLE,
    browser_tests_required,
    missing_binaries,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives the run page in a real headless Chromium (tests/browser/)"
    )
    missing = missing_binaries()
    if missing and browser_tests_required():
        raise pytest.UsageError(
            f"{REQUIRE_VARIABLE}=require, but {' and '.join(missing)} not found;"
            f" install them with `{INSTALL_HINT}`"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not missing_binaries():
        return
    deselected = [item for item in items if item.get_closest_marker("browser")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("browser")]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    missing = missing_binaries()
    if missing:
        terminalreporter.write_line(
            f"browser tests deselected: {' and '.join(missing)} not found;"
            f" install them with `{INSTALL_HINT}` (or set {REQUIRE_VARIABLE}=require to fail)"
        )
