"""A machine without Chromium: the browser tests are left out with one line saying how to
install it, or, with `WORKFLOW_STATION_BROWSER_TESTS=require` (`.ci/run`), the session fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pytest_in_a_machine_without_chromium(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/browser", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, "CHROMIUM": "/nonexistent/chromium", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_browser_tests_are_deselected_with_a_line_saying_how_to_install() -> None:
    result = pytest_in_a_machine_without_chromium(WORKFLOW_STATION_BROWSER_TESTS="")
    assert result.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout
    assert "deselected" in result.stdout.splitlines()[-1]
    assert "skipped" not in result.stdout
    assert (
        "browser tests deselected: /nonexistent/chromium not found; install them with"
        " `apt-get install chromium chromium-driver`"
    ) in result.stdout


def test_when_they_are_required_a_machine_without_chromium_fails_the_session() -> None:
    result = pytest_in_a_machine_without_chromium(WORKFLOW_STATION_BROWSER_TESTS="require")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert (
        "WORKFLOW_STATION_BROWSER_TESTS=require, but /nonexistent/chromium not found"
    ) in result.stderr
