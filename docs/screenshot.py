"""`make screenshot`: the run page of the example pipeline, saved to `docs/run-page.png` (the
README shows it).

Starts what it needs on free ports and stops it after (`bench.stack`: a Temporal dev server,
Redis, a worker and the gateway, plus the demo service the example calls), runs
`examples/dag_pipeline.json`, opens its run page in a headless Chromium (`tests/browser/`,
Debian's `chromium` and `chromium-driver`), selects the step that was retried and saves the
page as it looks.

    .venv/bin/python docs/screenshot.py [--output docs/run-page.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import bench_stack  # noqa: E402
from cli.stack import BIN, wait_for_port  # noqa: E402
from tests.browser.chromium import INSTALL_HINT, chromium, missing_binaries  # noqa: E402
from tests.browser.pages import NODE_STATUSES, WAIT_SECONDS, example_pipeline  # noqa: E402
from tests.fakes.targets import free_port  # noqa: E402

#: The step whose panel the picture shows: the one that was retried.
SELECTED = "flaky_check"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "run-page.png")
    args = parser.parse_args()
    missing = missing_binaries()
    if missing:
        print(f"{' and '.join(missing)} not found; install them with `{INSTALL_HINT}`")
        return 1
    with bench_stack() as stack:
        demo_port = free_port()
        demo = [str(BIN / "uvicorn"), "examples.demo_service:app", "--port", str(demo_port)]
        stack.start("demo", [*demo, "--log-level", "warning"])
        wait_for_port(demo_port)
        pipeline = example_pipeline(f"http://127.0.0.1:{demo_port}")
        with httpx.Client(base_url=stack.gateway_url, timeout=120) as http:
            run = http.post("/execute", json=pipeline).json()
        print(f"{pipeline['workflow_id']}: {run['status']}")
        with chromium(width=1280, height=760) as driver:
            driver.get(f"{stack.gateway_url}/ui/runs/{pipeline['workflow_id']}")
            wait = WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.1)
            final = dict.fromkeys(run["steps"], "completed")
            wait.until(lambda d: d.execute_script(NODE_STATUSES) == final)
            driver.find_element(By.CSS_SELECTOR, f'g.node[data-step="{SELECTED}"]').click()
            wait.until(lambda d: SELECTED in d.find_element(By.ID, "panel").text)
            driver.save_screenshot(str(args.output))
    print(f"saved {args.output}")
    return 0 if run["status"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
