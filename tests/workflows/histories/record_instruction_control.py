"""Record `instructions_rerun_approval.json`, an instruction run with the control of issue 20,
which tests/workflows/test_replay.py replays.

    .venv/bin/python tests/workflows/histories/record_instruction_control.py

A rerun of a run that failed at its second instruction (the first reused, the second edited),
then an approval instruction that waits, is paused at, approved, and resumed past. Re-record
it only when a change is meant to break such histories.
"""

import asyncio

from recording import OUT, TASK_QUEUE, recording_stack
from temporalio.client import WorkflowFailureError

from workflows.instructions.models import InstructionRunInput, InstructionRunStatus
from workflows.instructions.rerun import edited_instructions, plan_rerun, reused_states
from workflows.instructions.workflow import InstructionWorkflow
from workflows.shared.approvals import Approval


async def main():
    async with recording_stack() as rec:
        instructions = [
            {"type": "endpoint", "apiUrl": f"{rec.url}/record/rec-first"},
            {"type": "endpoint", "apiUrl": f"{rec.url}/status/rec-broken/404", "retries": 0},
            {"type": "approval", "message": "Post {{result}}?", "schema": {"type": "object"}},
            {"type": "endpoint", "apiUrl": f"{rec.url}/echo/rec", "body": {"d": "{{result}}"}},
        ]
        source = InstructionRunInput.model_validate(
            {"context": "ctx", "instructions": instructions, "executionMode": "durable"}
        )
        first = await rec.client.start_workflow(
            InstructionWorkflow.run, source, id="instr-source", task_queue=TASK_QUEUE
        )
        try:
            await first.result()
        except WorkflowFailureError as failed:
            status = InstructionRunStatus.model_validate(failed.cause.details[0])
        fixed = {"1": {"apiUrl": f"{rec.url}/record/rec-second"}}
        configs, edited = edited_instructions(source.instructions, fixed)
        run = InstructionRunInput.model_validate(
            {"context": "ctx", "instructions": configs, "executionMode": "durable"}
        )
        planned = plan_rerun(run.instructions, status, None, edited)
        run.rerun = reused_states("instr-source", status, planned)
        h = await rec.client.start_workflow(
            InstructionWorkflow.run, run, id="instr-source.rerun-1", task_queue=TASK_QUEUE
        )
        while (await h.query(InstructionWorkflow.get_status)).steps[2].status != "waiting":
            await asyncio.sleep(0.1)
        await h.execute_update(InstructionWorkflow.pause)
        await h.execute_update(
            InstructionWorkflow.approve, Approval(step_name="2", data={"ok": True}, by="rec")
        )
        await h.execute_update(InstructionWorkflow.resume)
        r = await h.result()
        print(r.status, r.reuse, [s.status for s in r.steps])
        (OUT / "instructions_rerun_approval.json").write_text((await h.fetch_history()).to_json())


asyncio.run(main())
