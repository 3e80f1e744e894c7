"""Record `dag_fast.json`, the execution-mode history tests/workflows/test_replay.py replays.

    .venv/bin/python tests/workflows/histories/record_modes.py

A fast-mode diamond: local calls (one retried, one aborted by its selection), outputs the
calls write themselves, and a step too long for a local activity that falls back to a
regular one. Re-record it only when a change is meant to break such histories.
"""

import asyncio
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from cli import BIN, dev_server_args, redis_command, wait_for_port
from settings import Settings, data_converter
from tests.fakes.targets import create_target_app, free_port, serve
from worker import build_workers, open_activities
from workflows.dag.models import DagRunInput
from workflows.dag.workflow import DagWorkflow

OUT = Path(__file__).resolve().parent


async def main():
    port = free_port()
    redis_dir = Path(tempfile.mkdtemp(prefix="ws-record-redis-"))
    redis_proc = subprocess.Popen(
        redis_command(port, redis_dir, persist=False), stdout=subprocess.DEVNULL
    )
    wait_for_port(port)
    s = Settings(
        _env_file=None,
        temporal_address="x",
        redis_url=f"redis://127.0.0.1:{port}/0",
        outbound_allow=["127.0.0.0/8"],
        task_queue="record",
    )
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=data_converter(s),
        dev_server_extra_args=dev_server_args(),
    )
    app, _ = create_target_app()
    async with serve(app) as url:
        redis = Redis.from_url(s.redis_url)
        async with open_activities(s) as acts:
            workers = build_workers(env.client, s, acts)
            running = [asyncio.create_task(w.run()) for w in workers]
            run = DagRunInput.model_validate(
                {
                    "workflow_id": "dag-fast",
                    "namespace": "rec",
                    "original_input": {"city": "Lyon"},
                    "STEPS_CONFIG": [
                        {
                            "step_name": "root",
                            "usid": "u-root",
                            "service_url": f"{url}/flaky/rec-{uuid.uuid4().hex}?failures=1",
                            "outputs": ["root_out"],
                            "input_prep_config": {"body": {"city": "{{original_input.city}}"}},
                        },
                        {
                            "step_name": "left",
                            "usid": "u-left",
                            "service_url": f"{url}/openai/rec",
                            "dependencies": ["root", "selection_side"],
                            "outputs": ["summary"],
                            "input_prep_config": {"body": {"text": "{{root_out.calls}}"}},
                        },
                        {
                            "step_name": "right",
                            "usid": "u-right",
                            "service_url": f"{url}/echo/rec",
                            "dependencies": ["root", "selection_side"],
                        },
                        {
                            "step_name": "long",
                            "usid": "u-long",
                            "service_url": f"{url}/echo/rec",
                            "dependencies": ["left"],
                            "outputs": ["final"],
                            "timeout": 120,
                            "input_prep_config": {"body": {"summary": "{{summary}}"}},
                        },
                    ],
                    "PIPELINE_SETTINGS": {
                        "error_handling": {"max_retries": 2, "retry_delay": 0.2},
                        "execution": {"mode": "fast"},
                    },
                }
            )
            run.engine.task_queue = "record"
            run.engine.execution_mode = "fast"
            await redis.set("rec:dag-fast:selection_side", '["u-left"]')
            h = await env.client.start_workflow(
                DagWorkflow.run, run, id=run.workflow_id, task_queue="record"
            )
            r = await h.result()
            print(r.status, {n: st.status for n, st in r.steps.items()})
            (OUT / "dag_fast.json").write_text((await h.fetch_history()).to_json())
            for w in workers:
                await w.shutdown()
            await asyncio.gather(*running)
        await redis.aclose()
    redis_proc.terminate()
    redis_proc.wait(10)
    shutil.rmtree(redis_dir, ignore_errors=True)
    await env.shutdown()


asyncio.run(main())
