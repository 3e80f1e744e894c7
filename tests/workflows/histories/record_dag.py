"""Re-record the DAG histories that tests/workflows/test_replay.py replays.

    .venv/bin/python tests/workflows/histories/record_dag.py

Run it only when a DagWorkflow change is meant to break old histories (nothing deployed
runs them yet); otherwise guard the change with `workflow.patched()`.
"""

import asyncio
import uuid

from recording import OUT, TASK_QUEUE, recording_stack
from temporalio.client import WorkflowFailureError

from workflows.dag.models import DagRunInput
from workflows.dag.workflow import DagWorkflow


async def main():
    async with recording_stack() as rec:
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
                        "service_url": f"{rec.url}/flaky/rec-{uuid.uuid4().hex}?failures=1",
                        "outputs": ["root_out"],
                        "input_prep_config": {"body": {"city": "{{original_input.city}}"}},
                    },
                    {
                        "step_name": "left",
                        "usid": "u-left",
                        "service_url": f"{rec.url}/openai/rec",
                        "dependencies": ["root", "selection_side"],
                        "outputs": ["summary"],
                        "input_prep_config": {"body": {"text": "{{lang}}"}},
                    },
                    {
                        "step_name": "right",
                        "usid": "u-right",
                        "service_url": f"{rec.url}/echo/rec",
                        "dependencies": ["root", "selection_side"],
                        "method": "GET",
                    },
                    {
                        "step_name": "below_right",
                        "usid": "u-br",
                        "service_url": f"{rec.url}/echo/rec",
                        "dependencies": ["right"],
                    },
                    {
                        "step_name": "join",
                        "usid": "u-join",
                        "service_url": f"{rec.url}/echo/rec",
                        "dependencies": ["left"],
                        "outputs": ["final"],
                        "input_prep_config": {"body": {"summary": "{{summary}}"}},
                    },
                ],
                "PIPELINE_SETTINGS": {
                    "error_handling": {"max_retries": 2, "retry_delay": 0.2},
                    "notifications": {"webhook_url": f"{rec.url}/hooks/rec"},
                },
            }
        )
        ok.engine.task_queue = TASK_QUEUE
        await rec.redis.set("rec:dag-completed:selection_side", '["u-left"]')
        h = await rec.client.start_workflow(
            DagWorkflow.run, ok, id=ok.workflow_id, task_queue=TASK_QUEUE
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
                        "service_url": f"{rec.url}/echo/rec",
                        "outputs": ["first"],
                    },
                    {
                        "step_name": "bad",
                        "usid": "u2",
                        "service_url": f"{rec.url}/status/rec/404",
                        "dependencies": ["ok"],
                    },
                    {
                        "step_name": "slow",
                        "usid": "u3",
                        "service_url": f"{rec.url}/slow/rec?ms=3000",
                        "dependencies": ["ok"],
                    },
                    {
                        "step_name": "after",
                        "usid": "u4",
                        "service_url": f"{rec.url}/echo/rec",
                        "dependencies": ["bad"],
                    },
                ],
                "PIPELINE_SETTINGS": {"notifications": {"webhook_url": f"{rec.url}/hooks/rec"}},
            }
        )
        bad.engine.task_queue = TASK_QUEUE
        h = await rec.client.start_workflow(
            DagWorkflow.run, bad, id=bad.workflow_id, task_queue=TASK_QUEUE
        )
        try:
            await h.result()
        except WorkflowFailureError as e:
            print("failed as expected:", e.cause)
        (OUT / "dag_failed.json").write_text((await h.fetch_history()).to_json())


asyncio.run(main())
