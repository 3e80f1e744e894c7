"""Record the webhook-outbox histories that tests/workflows/test_replay.py replays.

    .venv/bin/python tests/workflows/histories/record_webhooks.py

`dag_webhooks.json`: a DAG run that hands its events to its outbox (the `webhook-outbox`
patch). `webhook_outbox.json`: an outbox on its own whose receiver refuses the first event
(410), which the `redeliver` update then queues again, with retries and the final signal.
Re-record only when a change is meant to break running histories; otherwise use
`workflow.patched()`. `record_dag.py` keeps the histories recorded before outboxes.
"""

import asyncio
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from temporalio.testing import WorkflowEnvironment

from cli.stack import BIN, dev_server_args, redis_command, wait_for_port
from settings import DATA_CONVERTER, Settings
from tests.fakes.targets import create_target_app, free_port, serve
from worker import build_workers, open_activities
from workflows.dag.models import DagRunInput
from workflows.dag.workflow import DagWorkflow
from workflows.shared.outbox import WebhookOutboxWorkflow
from workflows.shared.webhooks import EventBatch, OutboxInput, OutboxState, Redelivery

OUT = Path(__file__).resolve().parent


async def main():
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=DATA_CONVERTER,
        dev_server_extra_args=dev_server_args(),
    )
    port = free_port()
    redis_dir = Path(tempfile.mkdtemp(prefix="ws-record-redis-"))
    redis_proc = subprocess.Popen(
        redis_command(port, redis_dir, persist=False), stdout=subprocess.DEVNULL
    )
    wait_for_port(port)
    app, state = create_target_app()
    async with serve(app) as url:
        s = Settings(
            _env_file=None,
            temporal_address="x",
            redis_url=f"redis://127.0.0.1:{port}/0",
            outbound_allow=["127.0.0.0/8"],
            task_queue="record",
        )
        async with open_activities(s) as acts:
            workers = build_workers(env.client, s, acts)
            running = [asyncio.create_task(w.run()) for w in workers]
            run = DagRunInput.model_validate(
                {
                    "workflow_id": "dag_webhooks",  # the file name: the replayer uses it as the id
                    "namespace": "rec",
                    "STEPS_CONFIG": [
                        {"step_name": "a", "usid": "u-a", "service_url": f"{url}/echo/rec"},
                        {
                            "step_name": "b",
                            "usid": "u-b",
                            "service_url": f"{url}/echo/rec",
                            "dependencies": ["a"],
                        },
                    ],
                    "PIPELINE_SETTINGS": {"notifications": {"webhook_url": f"{url}/hooks/rec"}},
                }
            )
            run.engine.task_queue = "record"
            h = await env.client.start_workflow(
                DagWorkflow.run, run, id=run.workflow_id, task_queue="record"
            )
            result = await h.result()
            await env.client.get_workflow_handle(result.webhooks.outbox_id).result()
            print("dag:", result.status, len(state.hooks["rec"]), "events delivered")
            (OUT / "dag_webhooks.json").write_text((await h.fetch_history()).to_json())

            events = [
                {"event": "step.completed", "event_id": f"rec:{n}", "sequence": n}
                for n in range(1, 4)
            ]
            outbox = OutboxState()
            outbox.enqueue(events[:1], datetime.now(UTC))
            h = await env.client.start_workflow(
                WebhookOutboxWorkflow.run,
                OutboxInput(
                    url=f"{url}/flaky/rec-outbox?failures=1&code=410",
                    workflow_id="rec",
                    state=outbox,
                ),
                id="rec/webhooks/outbox",
                task_queue="record",
            )
            await h.signal(WebhookOutboxWorkflow.enqueue, EventBatch(events=events[1:]))
            while (await h.query(WebhookOutboxWorkflow.get_status)).delivered < 2:
                await asyncio.sleep(0.1)
            print(
                "redeliver:", await h.execute_update(WebhookOutboxWorkflow.redeliver, Redelivery())
            )
            await h.signal(WebhookOutboxWorkflow.enqueue, EventBatch(final=True))
            final = await h.result()
            print("outbox:", final.state.summary().model_dump(include={"delivered", "failed"}))
            (OUT / "webhook_outbox.json").write_text((await h.fetch_history()).to_json())
            for w in workers:
                await w.shutdown()
            await asyncio.gather(*running)
    redis_proc.terminate()
    redis_proc.wait(10)
    shutil.rmtree(redis_dir, ignore_errors=True)
    await env.shutdown()


asyncio.run(main())
