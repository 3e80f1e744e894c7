"""Re-record the DAG histories that tests/workflows/test_replay.py replays.

    .venv/bin/python tests/workflows/histories/record_dag.py

Run it only when a DagWorkflow change is meant to break old histories (nothing deployed
runs them yet); otherwise guard the change with `workflow.patched()`.
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
from temporalio.client import WorkflowFailureError
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
    # The workers' converter: payloads past PAYLOAD_INLINE_MAX_BYTES would go to this Redis.
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
            ok = DagRunInput.model_validate(
                {
                    "workflow_id": "dag-completed",
                    "namespace": "rec",
                    "original_input": {"city": "Lyon"},
                    "input_data": {"lang": "fr"},
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
                            "input_prep_config": {"body": {"text": "{{lang}}"}},
                        },
                        {
                            "step_name": "right",
                            "usid": "u-right",
                            "service_url": f"{url}/echo/rec",
                            "dependencies": ["root", "selection_side"],
                            "method": "GET",
                        },
                        {
                            "step_name": "below_right",
                            "usid": "u-br",
                            "service_url": f"{url}/echo/rec",
                            "dependencies": ["right"],
                        },
                        {
                            "step_name": "join",
                            "usid": "u-join",
                            "service_url": f"{url}/echo/rec",
                            "dependencies": ["left"],
                            "outputs": ["final"],
                            "input_prep_config": {"body": {"summary": "{{summary}}"}},
                        },
                    ],
                    "PIPELINE_SETTINGS": {
                        "error_handling": {"max_retries": 2, "retry_delay": 0.2},
                        "notifications": {"webhook_url": f"{url}/hooks/rec"},
                    },
                }
            )
            ok.engine.task_queue = "record"
            await redis.set("rec:dag-completed:selection_side", '["u-left"]')
            h = await env.client.start_workflow(
                DagWorkflow.run, ok, id=ok.workflow_id, task_queue="record"
            )
            r = await h.result()
            print(r.status, {n: st.status for n, st in r.steps.items()})
            (OUT / "dag_completed.json").write_text((await h.fetch_history()).to_json())
            bad = DagRunInput.model_validate(
                {
                    "workflow_id": "dag-failed",
                    "namespace": "rec",
                    "STEPS_CONFIG": [
                        {
                            "step_name": "ok",
                            "usid": "u1",
                            "service_url": f"{url}/echo/rec",
                            "outputs": ["first"],
                        },
                        {
                            "step_name": "bad",
                            "usid": "u2",
                            "service_url": f"{url}/status/rec/404",
                            "dependencies": ["ok"],
                        },
                        {
                            "step_name": "slow",
                            "usid": "u3",
                            "service_url": f"{url}/slow/rec?ms=3000",
                            "dependencies": ["ok"],
                        },
                        {
                            "step_name": "after",
                            "usid": "u4",
                            "service_url": f"{url}/echo/rec",
                            "dependencies": ["bad"],
                        },
                    ],
                    "PIPELINE_SETTINGS": {"notifications": {"webhook_url": f"{url}/hooks/rec"}},
                }
            )
            bad.engine.task_queue = "record"
            h = await env.client.start_workflow(
                DagWorkflow.run, bad, id=bad.workflow_id, task_queue="record"
            )
            try:
                await h.result()
            except WorkflowFailureError as e:
                print("failed as expected:", e.cause)
            (OUT / "dag_failed.json").write_text((await h.fetch_history()).to_json())
            for w in workers:
                await w.shutdown()
            await asyncio.gather(*running)
        await redis.aclose()
    redis_proc.terminate()
    redis_proc.wait(10)
    shutil.rmtree(redis_dir, ignore_errors=True)
    await env.shutdown()


asyncio.run(main())
