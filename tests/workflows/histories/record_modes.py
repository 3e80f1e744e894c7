"""Record `dag_fast.json`, the execution-mode history tests/workflows/test_replay.py replays.

    .venv/bin/python tests/workflows/histories/record_modes.py

A fast-mode diamond: local calls (one retried, one aborted by its selection), outputs the
calls write themselves, and a step too long for a local activity that falls back to a
regular one. Re-record it only when a change is meant to break such histories.
"""

import asyncio
import uuid

from recording import OUT, TASK_QUEUE, recording_stack

from workflows.dag.models import DagRunInput
from workflows.dag.workflow import DagWorkflow


async def main():
    async with recording_stack() as rec:
        run = DagRunInput.model_validate(
            {
                "workflow_id": "dag-fast",
                "namespace": "rec",
                "original_input": {"city": "Lyon"},
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
                        "input_prep_config": {"body": {"text": "{{root_out.calls}}"}},
                    },
                    {
                        "step_name": "right",
                        "usid": "u-right",
                        "service_url": f"{rec.url}/echo/rec",
                        "dependencies": ["root", "selection_side"],
                    },
                    {
                        "step_name": "long",
                        "usid": "u-long",
                        "service_url": f"{rec.url}/echo/rec",
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
        run.engine.task_queue = TASK_QUEUE
        run.engine.execution_mode = "fast"
        await rec.redis.set("rec:dag-fast:selection_side", '["u-left"]')
        h = await rec.client.start_workflow(
            DagWorkflow.run, run, id=run.workflow_id, task_queue=TASK_QUEUE
        )
        r = await h.result()
        print(r.status, {n: st.status for n, st in r.steps.items()})
        (OUT / "dag_fast.json").write_text((await h.fetch_history()).to_json())


asyncio.run(main())
