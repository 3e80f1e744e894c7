"""Record `dag-llm-steps.json`, the LLM steps history tests/workflows/test_replay.py replays.

    .venv/bin/python tests/workflows/histories/record_llm_steps.py

A fast-mode run with every step type: an HTTP step (local), an `llm` step with an
`output_schema` (a regular activity, retried once after a 503), an `instructions` step (a
child instruction run) reading the `llm` step's `json`, and an HTTP step after it. The LLM
calls go to the fake OpenAI API. Re-record it only when a change is meant to break such
histories. The file is named for the run's id (the replayer gives the run its file's stem
as its id, and the child run's id derives from it).
"""

import asyncio

from recording import OUT, TASK_QUEUE, recording_stack

from gateway.starts import instruction_engine_options
from settings import Settings
from tests.fakes.llm_server import FakeLLMServer
from workflows.dag.models import DagRunInput
from workflows.dag.workflow import DagWorkflow


async def main():
    async with FakeLLMServer() as fake:
        fake.fail(503)
        fake.when("Classify").reply_json({"label": "fruit"}, usage=(7, 3))
        fake.when("Shorten").reply("Sweet.", usage=(4, 1))
        async with recording_stack(
            openai_api_key="sk-record", openai_base_url=fake.base_url_openai
        ) as rec:
            run = DagRunInput.model_validate(
                {
                    "workflow_id": "dag-llm-steps",
                    "namespace": "rec",
                    "original_input": {"items": ["apple", "pear"]},
                    "STEPS_CONFIG": [
                        {
                            "step_name": "fetch",
                            "usid": "u-fetch",
                            "service_url": f"{rec.url}/echo/rec",
                            "input_prep_config": {"body": {"items": "{{original_input.items}}"}},
                        },
                        {
                            "step_name": "classify",
                            "usid": "u-classify",
                            "type": "llm",
                            "dependencies": ["fetch"],
                            "outputs": ["classify"],
                            "llm": {
                                "provider": "openai",
                                "model": "gpt-record",
                                "prompt": "Classify {{fetch_result.json.items}}",
                                "output_schema": {
                                    "type": "object",
                                    "properties": {"label": {"enum": ["fruit", "vegetable"]}},
                                    "required": ["label"],
                                },
                            },
                        },
                        {
                            "step_name": "route",
                            "usid": "u-route",
                            "type": "instructions",
                            "dependencies": ["classify"],
                            "outputs": ["short"],
                            "instructions": {
                                "context": "{{classify.json.label}}",
                                "instructions": ["Shorten this."],
                            },
                        },
                        {
                            "step_name": "report",
                            "usid": "u-report",
                            "dependencies": ["route"],
                            "service_url": f"{rec.url}/echo/rec",
                            "input_prep_config": {"body": {"dish": "{{short.output}}"}},
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
            run.engine.validated = True
            run.engine.instruction_engine = instruction_engine_options(
                Settings(_env_file=None, task_queue=TASK_QUEUE)
            ).model_dump(mode="json")
            h = await rec.client.start_workflow(
                DagWorkflow.run, run, id=run.workflow_id, task_queue=TASK_QUEUE
            )
            r = await h.result()
            print(r.status, r.usage, {n: (st.status, st.attempts) for n, st in r.steps.items()})
            (OUT / "dag-llm-steps.json").write_text((await h.fetch_history()).to_json())


asyncio.run(main())
