"""Record `dag-budget.json`, the run budget history tests/workflows/test_replay.py replays.

    .venv/bin/python tests/workflows/histories/record_budget.py

A durable run with `budget: {max_cost_usd, on_exceed: pause}`: `spend` bills 0.26 USD on
gpt-4o, `ask` (estimated at 0.01 USD) would cross the 0.265 USD budget, so it waits until an
approval raises the budget to 1 USD, then calls; the run ends with its usage in its memo.
The LLM calls go to the fake OpenAI API. Re-record it only when a change is meant to break
such histories.
"""

import asyncio

from recording import OUT, TASK_QUEUE, recording_stack

from activities.pricing.table import load_prices
from tests.fakes.llm_server import FakeLLMServer
from workflows.dag.models import DagRunInput
from workflows.dag.workflow import DagWorkflow
from workflows.shared.approvals import Approval


async def main():
    async with FakeLLMServer() as fake:
        fake.when("Answer spend").reply("spent", usage=(100_000, 1_000))
        fake.when("Answer ask").reply("asked", usage=(10, 5))
        async with recording_stack(
            openai_api_key="sk-record", openai_base_url=fake.base_url_openai
        ) as rec:
            run = DagRunInput.model_validate(
                {
                    "workflow_id": "dag-budget",
                    "namespace": "rec",
                    "STEPS_CONFIG": [
                        {
                            "step_name": name,
                            "usid": f"u-{name}",
                            "type": "llm",
                            "dependencies": after,
                            "llm": {
                                "provider": "openai",
                                "model": "gpt-4o",
                                "prompt": f"Answer {name}",
                                "max_tokens": 1000,
                            },
                        }
                        for name, after in (("spend", []), ("ask", ["spend"]))
                    ],
                    "PIPELINE_SETTINGS": {
                        "budget": {"max_cost_usd": 0.265, "on_exceed": "pause"},
                        "error_handling": {"max_retries": 0},
                    },
                }
            )
            run.engine.task_queue = TASK_QUEUE
            run.engine.validated = True
            run.engine.prices = load_prices().models
            h = await rec.client.start_workflow(
                DagWorkflow.run, run, id=run.workflow_id, task_queue=TASK_QUEUE
            )
            while (await h.query(DagWorkflow.get_status)).steps["ask"].status != "waiting":
                await asyncio.sleep(0.1)
            await h.execute_update(
                DagWorkflow.approve, Approval(step_name="ask", data={"max_cost_usd": 1.0})
            )
            r = await h.result()
            print(r.status, r.usage, r.budget, {n: st.status for n, st in r.steps.items()})
            (OUT / "dag-budget.json").write_text((await h.fetch_history()).to_json())


asyncio.run(main())
