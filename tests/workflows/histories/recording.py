"""What the history recorders share: a dev server, Redis, the fake targets and the project's
workers, as `worker.py` builds them, on the `record` task queue.

The recorders run as scripts (`.venv/bin/python tests/workflows/histories/record_*.py`)."""

import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from cli.stack import BIN, dev_server_args, redis_command, wait_for_port
from settings import Settings, data_converter
from tests.fakes.targets import create_target_app, free_port, serve
from worker import build_workers, open_activities

OUT = Path(__file__).resolve().parent
TASK_QUEUE = "record"


@dataclass
class Recording:
    client: Client
    #: The fake targets' base URL.
    url: str
    redis: Redis


@asynccontextmanager
async def recording_stack(**settings_overrides: object) -> AsyncIterator[Recording]:
    """Start everything, yield it with the workers polling, stop it all on the way out;
    `settings_overrides` go to the workers' settings (an LLM provider's base URL...)."""
    port = free_port()
    redis_dir = Path(tempfile.mkdtemp(prefix="ws-record-redis-"))
    redis_proc = subprocess.Popen(
        redis_command(port, redis_dir, persist=False), stdout=subprocess.DEVNULL
    )
    wait_for_port(port)
    settings = Settings(
        _env_file=None,
        temporal_address="x",
        redis_url=f"redis://127.0.0.1:{port}/0",
        outbound_allow=["127.0.0.0/8"],
        task_queue=TASK_QUEUE,
        **settings_overrides,
    )
    # The workers' converter: payloads past PAYLOAD_INLINE_MAX_BYTES would go to this Redis.
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=data_converter(settings),
        dev_server_extra_args=dev_server_args(),
    )
    app, _ = create_target_app()
    try:
        async with serve(app) as url, open_activities(settings) as activities:
            redis = Redis.from_url(settings.effective_redis_url)
            workers = build_workers(env.client, settings, activities)
            running = [asyncio.create_task(worker.run()) for worker in workers]
            try:
                yield Recording(client=env.client, url=url, redis=redis)
            finally:
                for worker in workers:
                    await worker.shutdown()
                await asyncio.gather(*running)
                await redis.aclose()
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(redis_dir, ignore_errors=True)
        await env.shutdown()
