"""Long runs continue as new when the server suggests it, and read as one run to users.

A dev server of its own suggests continue-as-new after a few dozen history events, so a
modest chain crosses several runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from cli.stack import BIN, dev_server_args
from tests.conftest import Engine, Targets, _run_workers, make_settings, unique, wait_until
from tests.fakes.targets import serve
from workflows.dag.graph import DagGraph
from workflows.dag.models import DagRerun, DagRunInput
from workflows.dag.rerun import unchanged_candidates
from workflows.dag.workflow import DagWorkflow
from workflows.instructions.models import InstructionRunInput
from workflows.instructions.workflow import InstructionWorkflow
from workflows.shared.control import workflow_task_timeout
from workflows.shared.events import EventsQuery

SUGGEST_AFTER_EVENTS = 40


@pytest.fixture(scope="module")
async def short_history_env(converter: DataConverter) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=converter,
        dev_server_extra_args=[
            *dev_server_args(),
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER_EVENTS}",
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def short_history_engine(
    short_history_env: WorkflowEnvironment, redis_url: str
) -> AsyncIterator[Engine]:
    settings = make_settings(short_history_env.client, redis_url)
    async for running in _run_workers(short_history_env.client, settings, []):
        yield running


def chain(targets: Targets, key: str, length: int) -> list[dict[str, Any]]:
    """Each step sends its number and the number its predecessor's answer carried."""
    steps = []
    for i in range(length):
        body: dict[str, Any] = {"n": i}
        if i:
            body["previous"] = f"{{{{o{i - 1}.json.n}}}}"
        steps.append(
            {
                "step_name": f"s{i}",
                "usid": f"u{i}",
                "service_url": f"{targets.url}/echo/{key}",
                "dependencies": [f"s{i - 1}"] if i else [],
                "outputs": [f"o{i}"],
                "input_prep_config": {"body": body},
            }
        )
    return steps


async def test_a_long_chain_continues_as_new_and_finishes_as_one_run(
    short_history_engine: Engine, targets: Targets
) -> None:
    engine = short_history_engine
    key = unique("chain")
    steps = chain(targets, key, 30)
    run = DagRunInput.model_validate(
        {"workflow_id": unique("long"), "namespace": "tests", "STEPS_CONFIG": steps}
    )
    run.engine.task_queue = engine.settings.task_queue
    handle = await engine.client.start_workflow(
        DagWorkflow.run, run, id=run.workflow_id, task_queue=engine.settings.task_queue
    )

    result = await handle.result()

    assert result.status == "completed"
    assert result.progress.completed == 30
    assert all(step.status == "completed" for step in result.steps.values())
    # Values flowed across the runs of the chain: each step got its predecessor's number.
    sent = [request["json"] for request in targets.state.requests[key]]
    assert [body["n"] for body in sent] == list(range(30))
    assert [body["previous"] for body in sent[1:]] == list(range(29))
    assert targets.state.calls[key] == 30  # no step ran twice across the chain

    async def chain_ended() -> list[WorkflowExecutionStatus] | None:
        # Visibility lags the run: its last run may still list as running for a moment.
        runs = [
            execution.status
            async for execution in engine.client.list_workflows(f"WorkflowId = '{run.workflow_id}'")
        ]
        return runs if WorkflowExecutionStatus.RUNNING not in runs else None

    runs = await wait_until(chain_ended)
    assert runs.count(WorkflowExecutionStatus.CONTINUED_AS_NEW) >= 2
    assert runs.count(WorkflowExecutionStatus.COMPLETED) == 1
    # The latest run answers for the whole chain.
    status = await engine.client.get_workflow_handle_for(DagWorkflow.run, run.workflow_id).query(
        DagWorkflow.get_status
    )
    assert status.progress.completed == 30
    # Its event log too: every run handed its newest events on, so the stream has no gap.
    page = await handle.query(DagWorkflow.get_events, EventsQuery(after=0))
    assert [e["sequence"] for e in page.events] == list(range(1, 63))
    assert page.first_sequence == 1 and page.last_sequence == 62 and not page.more
    assert page.events[-1]["event"] == "workflow.completed"
    assert len({e["run_id"] for e in page.events}) >= 3


async def test_a_long_instruction_run_continues_as_new_and_keeps_its_queue(
    short_history_engine: Engine, targets: Targets
) -> None:
    engine = short_history_engine
    key = unique("instr")
    instructions: list[dict[str, Any]] = [
        {"type": "endpoint", "apiUrl": f"{targets.url}/echo/{key}?n={i}"} for i in range(14)
    ]
    # A branch taken before the chain continues must still hold after it.
    instructions[1]["condition"] = {"expression": "result contains 'echo'", "ifTrue": [13]}
    run = InstructionRunInput.model_validate({"context": "ctx", "instructions": instructions})
    workflow_id = unique("long-instr")
    handle = await engine.client.start_workflow(
        InstructionWorkflow.run, run, id=workflow_id, task_queue=engine.settings.task_queue
    )

    status = await handle.result()

    assert status.status == "complete"
    assert status.execution_order == [0, 1, 13, *range(2, 13)]
    assert [request["query"]["n"] for request in targets.state.requests[key]] == [
        str(i) for i in status.execution_order
    ]
    runs = [
        execution.status
        async for execution in engine.client.list_workflows(f"WorkflowId = '{workflow_id}'")
    ]
    assert runs.count(WorkflowExecutionStatus.CONTINUED_AS_NEW) >= 1
    page = await handle.query(InstructionWorkflow.get_events, EventsQuery(after=0))
    assert [e["sequence"] for e in page.events] == list(range(1, 31))
    assert [e["event"] for e in page.events[:3]] == [
        "workflow.started",
        "step.started",
        "step.completed",
    ]
    assert page.events[-1]["event"] == "workflow.completed"
    assert [e["index"] for e in page.events if e["event"] == "step.completed"] == (
        status.execution_order
    )


async def test_a_chain_that_continued_as_new_is_rerun_from_its_failed_step(
    short_history_engine: Engine, targets: Targets
) -> None:
    from gateway.app import create_app

    engine = short_history_engine
    key = unique("rerun-chain")
    steps = chain(targets, key, 30)
    steps[25]["service_url"] = f"{targets.url}/status/{key}-broken/404"
    body = {"workflow_id": unique("long-rerun"), "namespace": "tests", "STEPS_CONFIG": steps}
    async with (
        serve(create_app(engine.settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as http,
    ):
        failed = (await http.post("/execute", json=body)).json()
        assert failed["status"] == "failed" and failed["error"]["step_name"] == "s25"
        runs = [
            execution.status
            async for execution in engine.client.list_workflows(
                f"WorkflowId = '{body['workflow_id']}'"
            )
        ]
        assert runs.count(WorkflowExecutionStatus.CONTINUED_AS_NEW) >= 2
        assert targets.state.calls[key] == 25

        fixed = {"s25": {"service_url": f"{targets.url}/echo/{key}"}}
        response = await http.post(f"/runs/{body['workflow_id']}/rerun", json={"steps": fixed})
        assert response.status_code == 202, response.text
        assert response.json()["rerun"] == [f"s{i}" for i in range(25, 30)]
        rerun = engine.client.get_workflow_handle_for(
            DagWorkflow.run, response.json()["workflow_id"]
        )
        result = await rerun.result()
        # A rerun of the rerun, long enough to continue as new itself.
        again = await http.post(f"/runs/{rerun.id}/rerun", json={"from_step": "s5"})
        assert again.status_code == 202, again.text
        second = engine.client.get_workflow_handle_for(DagWorkflow.run, again.json()["workflow_id"])
        last = await second.result()

    assert result.status == "completed"
    assert result.reuse is not None and result.reuse.steps_reused == 25
    assert targets.state.calls[key] == 30 + 25  # the first 25 steps were not called again
    sent = [request["json"] for request in targets.state.requests[key]]
    # The rerun's first step read the reused step before it: its number, 24.
    assert sent[25] == {"n": 25, "previous": 24}
    assert sent[30] == {"n": 5, "previous": 4}
    assert last.status == "completed" and last.progress.completed == 30
    assert last.reuse is not None and last.reuse.steps_reused == 5
    assert last.rerun_of == rerun.id
    chained = [
        execution.status
        async for execution in engine.client.list_workflows(f"WorkflowId = '{second.id}'")
    ]
    assert chained.count(WorkflowExecutionStatus.CONTINUED_AS_NEW) >= 1


async def test_every_run_of_a_chain_keeps_the_workflow_task_timeout_it_started_with(
    short_history_engine: Engine, targets: Targets
) -> None:
    """The server hands a run's workflow task timeout on when it continues as new, so a long
    `fast` run keeps `workflows.shared.control`'s 0.75 s one (its steps here are durable: they
    make the history long enough to continue)."""
    engine = short_history_engine
    run = DagRunInput.model_validate(
        {
            "workflow_id": unique("long-short-task"),
            "STEPS_CONFIG": chain(targets, unique("chain"), 20),
        }
    )
    run.engine.task_queue = engine.settings.task_queue
    handle = await engine.client.start_workflow(
        DagWorkflow.run,
        run,
        id=run.workflow_id,
        task_queue=engine.settings.task_queue,
        task_timeout=workflow_task_timeout(may_run_local=True),  # as the gateway would
    )
    assert (await handle.result()).status == "completed"

    timeouts = []
    async for execution in engine.client.list_workflows(f"WorkflowId = '{run.workflow_id}'"):
        described = await engine.client.get_workflow_handle(
            run.workflow_id, run_id=execution.run_id
        ).describe()
        timeouts.append(described.raw_description.execution_config.default_workflow_task_timeout)
    assert len(timeouts) >= 2  # it continued as new
    assert {timeout.ToMilliseconds() for timeout in timeouts} == {750}


async def test_an_instruction_run_that_continued_as_new_is_rerun_from_its_failed_step(
    short_history_engine: Engine, targets: Targets
) -> None:
    from gateway.app import create_app

    engine = short_history_engine
    key = unique("instr-rerun")
    instructions: list[dict[str, Any]] = [
        {"type": "endpoint", "apiUrl": f"{targets.url}/record/{key}?n={i}", "retries": 0}
        for i in range(20)
    ]
    instructions[16]["apiUrl"] = f"{targets.url}/status/{key}-broken/404"
    async with (
        serve(create_app(engine.settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as http,
    ):
        body = {"context": "ctx", "instructions": instructions, "executionMode": "durable"}
        created = await http.post("/", json=body)
        source = created.json()["instanceId"]
        handle = engine.client.get_workflow_handle(source)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        runs = [
            execution.status
            async for execution in engine.client.list_workflows(f"WorkflowId = '{source}'")
        ]
        assert runs.count(WorkflowExecutionStatus.CONTINUED_AS_NEW) >= 1
        assert targets.state.calls[key] == 16

        fixed = {"16": {"apiUrl": f"{targets.url}/record/{key}?n=16"}}
        response = await http.post(f"/runs/{source}/rerun", json={"instructions": fixed})
        assert response.status_code == 202, response.text
        assert response.json()["reused"] == [str(i) for i in range(16)]
        rerun = engine.client.get_workflow_handle_for(
            InstructionWorkflow.run, response.json()["workflow_id"]
        )
        status = await rerun.result()

    assert status.status == "complete"
    assert status.reuse is not None and status.reuse.steps_reused == 16
    assert status.execution_order == list(range(20))
    # The first 16 instructions were not called again.
    assert targets.state.calls[key] == 16 + 4


async def test_a_rerun_that_continues_as_new_still_reuses_its_unchanged_steps(
    short_history_engine: Engine, targets: Targets
) -> None:
    """A rerun hands the steps it may still find unchanged on when it continues as new: here
    one step at a time, so the `late` chain is reached only after `s0`…`s29` ran again,
    several runs into the chain."""
    engine = short_history_engine
    key, late = unique("chain"), unique("late")
    steps = chain(targets, key, 30)
    steps += [
        {"step_name": f"late{i}", "usid": f"late{i}", "service_url": f"{targets.url}/echo/{late}"}
        for i in range(2)
    ]
    steps[-1]["dependencies"] = ["late0"]
    one_at_a_time = {"concurrency": {"max_parallel": 1}}

    def run_of(workflow_id: str) -> DagRunInput:
        run = DagRunInput.model_validate(
            {"workflow_id": workflow_id, "STEPS_CONFIG": steps, "PIPELINE_SETTINGS": one_at_a_time}
        )
        run.engine.task_queue = engine.settings.task_queue
        return run

    source = run_of(unique("long-source"))
    ran = await engine.client.execute_workflow(
        DagWorkflow.run, source, id=source.workflow_id, task_queue=engine.settings.task_queue
    )
    assert ran.status == "completed" and targets.state.calls[late] == 2
    # As the gateway plans `from_step: s0` with `late0` and `late1` edited (their timeouts).
    rerun = run_of(f"{source.workflow_id}.rerun-1")
    rerun.rerun = DagRerun(
        source=source.workflow_id,
        edited=unchanged_candidates(
            DagGraph.build(rerun.STEPS_CONFIG), ran, "s0", [s["step_name"] for s in steps]
        ),
    )
    result = await engine.client.execute_workflow(
        DagWorkflow.run, rerun, id=rerun.workflow_id, task_queue=engine.settings.task_queue
    )

    assert result.status == "completed"
    assert result.reuse is not None and result.reuse.unchanged == ["late0", "late1"]
    assert targets.state.calls[key] == 60 and targets.state.calls[late] == 2
    runs = [
        execution.status
        async for execution in engine.client.list_workflows(f"WorkflowId = '{rerun.workflow_id}'")
    ]
    assert runs.count(WorkflowExecutionStatus.CONTINUED_AS_NEW) >= 1
