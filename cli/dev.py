"""`make dev` (`workflow-station dev`): the whole stack in the foreground, then the examples,
until Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import httpx

from cli.devkey import DEV_TENANT, ensure_dev_api_key, key_file
from cli.examples import stand_in_environment, submit_examples
from cli.stack import (
    BIN,
    ROOT,
    Stack,
    gateway_command,
    port_in_use,
    redis_command,
    temporal_command,
    wait_for_port,
)
from settings import Settings, temporal_connect_config, uses_embedded_temporal

#: Fair use sized for one developer's machine, not a shared gateway: a local load test or a
#: few `run --follow`s must not starve the examples of the dev tenant's request rate. Set
#: in the environment or `.env`, these settings win.
DEV_FAIR_USE = {"tenant_requests_per_second": 1000.0, "tenant_max_running_runs": 2000}
#: Where `make dev`'s worker serves its Prometheus page (WORKER_METRICS_ADDRESS).
DEV_WORKER_METRICS_ADDRESS = "127.0.0.1:9464"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def dev_environment(settings: Settings, env: dict[str, str]) -> dict[str, str]:
    """The environment of `make dev`'s processes: `env` with the dev stack's defaults, none
    of which opens the stack to the web pages the developer's browser visits.

    - No `GATEWAY_API_KEYS`: the dev key (`cli.devkey`), so a page cannot call the gateway.
    - `OUTBOUND_ALLOW`: the demo service only, the examples' targets; not all of loopback,
      which would let a run fetch the gateway itself, the Web UI or the worker's metrics.
    - No `CORS_ALLOW_ORIGINS`: no origin is answered unless configured.
    - Fair use for one developer (`DEV_FAIR_USE`), and no LLM provider configured: the
      worker asks the demo service's stand-in LLM (`cli.examples.stand_in_environment`).
    """
    env = dict(env)
    if not settings.gateway_api_keys:
        env["GATEWAY_API_KEYS"] = f"{DEV_TENANT}:{ensure_dev_api_key(settings)}"
    port = settings.demo_port
    env.setdefault("OUTBOUND_ALLOW", f"127.0.0.1:{port},localhost:{port}")
    # The worker's Prometheus page (SDK and engine metrics), next to the gateway's /metrics.
    env.setdefault("WORKER_METRICS_ADDRESS", DEV_WORKER_METRICS_ADDRESS)
    env["PYTHONUNBUFFERED"] = "1"
    for name, value in DEV_FAIR_USE.items():
        if name not in settings.model_fields_set:
            env[name.upper()] = str(value)
    env.update(stand_in_environment(settings))
    return env


def dev(settings: Settings) -> int:
    """Start the stack, submit the examples, and keep it running until Ctrl-C (or SIGTERM);
    the exit code: 0 when stopped, 1 when a process failed or the stack never got healthy."""
    # SIGTERM/SIGHUP (a closed terminal, `timeout`, a supervisor) stop the stack like Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    data_dir = (ROOT / settings.data_dir).resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dev_environment(settings, dict(os.environ))
    stack = Stack()
    # No address in TEMPORAL_ADDRESS, `.env` or a Temporal profile: start the embedded server.
    embedded = uses_embedded_temporal(settings)
    try:
        print("Workflow Station dev stack")
        if embedded:
            if port_in_use(settings.temporal_port):
                raise RuntimeError(
                    f"port {settings.temporal_port} is taken; stop what uses it or"
                    " set TEMPORAL_ADDRESS to use that server"
                )
            stack.start(
                "temporal",
                temporal_command(settings, data_dir / "temporal.db"),
                env,
                logs / "temporal.log",
            )
        if settings.redis_url is None:
            if port_in_use(settings.redis_port):
                raise RuntimeError(
                    f"port {settings.redis_port} is taken; set REDIS_URL to use"
                    " that Redis, or REDIS_PORT to another port"
                )
            stack.start(
                "redis", redis_command(settings.redis_port, data_dir), env, logs / "redis.log"
            )
        stack.start(
            "demo",
            [
                str(BIN / "uvicorn"),
                "examples.demo_service:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(settings.demo_port),
                "--log-level",
                "warning",
            ],
            env,
            logs / "demo.log",
        )
        if embedded:
            wait_for_port(settings.temporal_port)
        stack.start(
            "worker", [sys.executable, "worker.py", "--endpoint", "all"], env, logs / "worker.log"
        )
        stack.start(
            "gateway",
            gateway_command(settings, settings.gateway_port, settings.gateway_host),
            env,
            logs / "gateway.log",
        )
        wait_for_port(settings.gateway_port)
        wait_for_port(settings.demo_port)
        deadline = time.monotonic() + 60
        health: Any = "no answer from the gateway"
        while True:
            stack.check()
            try:
                health = httpx.get(f"http://127.0.0.1:{settings.gateway_port}/health").json()
                if health.get("status") == "ok":
                    break
            except (httpx.HTTPError, ValueError):  # not up yet, or not answering JSON
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stack is not healthy after 60s: {health}")
            time.sleep(0.3)
        print(f"\n  Gateway   http://127.0.0.1:{settings.gateway_port}  (API docs: /docs)")
        if embedded:
            print(f"  Web UI    http://localhost:{settings.temporal_ui_port}")
        if settings.encryption_keys:
            print(f"  Payloads  encrypted; the Web UI decodes them at {settings.codec_endpoint}")
        print(
            f"  Temporal  {temporal_connect_config(settings)['target_host']}   Redis "
            f"{settings.effective_redis_url}"
        )
        print(
            f"  Metrics   http://127.0.0.1:{settings.gateway_port}/metrics (gateway),"
            f" http://{env['WORKER_METRICS_ADDRESS']}/metrics (worker)"
        )
        if not settings.gateway_api_keys:
            print(
                f"  API key   export WORKFLOW_STATION_API_KEY={ensure_dev_api_key(settings)}\n"
                f"            (tenant {DEV_TENANT!r}, kept in {key_file(settings)}; the CLI reads"
                ' it there, curl needs -H "Authorization: Bearer $WORKFLOW_STATION_API_KEY")'
            )
        submit_examples(settings)
        print("\nThe stack keeps running; Ctrl-C stops everything it started.")
        while True:
            stack.check()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping…")
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"\nerror: {exc}\nlogs: {logs}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
