"""Record `dag_segments.json`, the segments history tests/workflows/test_replay.py replays.

    .venv/bin/python tests/workflows/histories/record_segments.py

A fast-mode run after segments: a chain and a fan-out in one segment (a step retried inside
it, templates read from steps of the same segment), a step with a selection run on its own,
and a step too long for a local activity scheduled as a regular one. Re-record it only when
a change is meant to break such histories.
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
                "workflow_id": "dag-segments",
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
                    *(
                        {
                            "step_name": f"fan{i}",
                            "usid": f"u-fan{i}",
                            "service_url": f"{rec.url}/echo/rec",
                            "dependencies": ["root"],
                            "outputs": [f"fan{i}_out"],
                            "input_prep_config": {"body": {"calls": "{{root_out.calls}}"}},
                        }
                        for i in range(3)
                    ),
                    {
                        "step_name": "picked",
                        "usid": "u-picked",
                        "service_url": f"{rec.url}/echo/rec",
                        "dependencies": ["fan0", "selection_side"],
                    },
                    {
                        "step_name": "long",
                        "usid": "u-long",
                        "service_url": f"{rec.url}/echo/rec",
                        "dependencies": ["fan1"],
                        "timeout": 120,
                        "input_prep_config": {"body": {"fan": "{{fan1_out.json}}"}},
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
        await rec.redis.set("rec:dag-segments:selection_side", '["u-picked"]')
        h = await rec.client.start_workflow(
            DagWorkflow.run, run, id=run.workflow_id, task_queue=TASK_QUEUE
        )
        r = await h.result()
        print(r.status, {n: (st.status, st.attempts) for n, st in r.steps.items()})
        (OUT / "dag_segments.json").write_text((await h.fetch_history()).to_json())


asyncio.run(main())
