"""InstructionWorkflow in the time-skipping environment with the real activities: the real
OpenAI and Anthropic SDKs talk to the fake LLM server, endpoint steps make real HTTP calls to
the local targets service."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from tests.conftest import (
    Engine,
    Targets,
    _run_workers,
    llm_settings,
    make_settings,
    unique,
    wait_until,
)
from tests.fakes.llm_server import FakeLLMServer, RecordedRequest
from tests.fakes.targets import serve
from workflows.instructions.models import InstructionRunInput, InstructionRunStatus
from workflows.instructions.workflow import InstructionWorkflow
from workflows.shared.events import EventsQuery


def payload(instructions: list[Any], **fields: Any) -> InstructionRunInput:
    return InstructionRunInput.model_validate(
        {"context": "CONTEXT-TEXT", "instructions": instructions, **fields}
    )


async def start(
    engine: Engine, run: InstructionRunInput
) -> WorkflowHandle[InstructionWorkflow, InstructionRunStatus]:
    return await engine.client.start_workflow(
        InstructionWorkflow.run, run, id=unique("instr"), task_queue=engine.settings.task_queue
    )


async def run(engine: Engine, run: InstructionRunInput) -> InstructionRunStatus:
    return await (await start(engine, run)).result()


async def run_failing(engine: Engine, run: InstructionRunInput) -> InstructionRunStatus:
    """Run to its failure; the status the workflow reported in `InstructionFailed` details."""
    with pytest.raises(WorkflowFailureError) as info:
        await (await start(engine, run)).result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "InstructionFailed"
    status = InstructionRunStatus.model_validate(cause.details[0])
    assert status.status == "errored"
    return status


def prompts_with(fake: FakeLLMServer, text: str) -> list[RecordedRequest]:
    return [request for request in fake.requests if text in request.prompt_text]


# --- LLM steps ---------------------------------------------------------------------------------


async def test_each_step_sees_only_the_previous_result(llm_engine: Engine, fake_llm: FakeLLMServer):
    fake_llm.when("Summarise").reply("SUMMARY-ONE", usage=(3, 5))
    fake_llm.when("Translate").reply("TRANSLATION-TWO", usage=(7, 11))
    fake_llm.when("Shorten").reply("SHORT-THREE", usage=(1, 1))

    status = await run(llm_engine, payload(["Summarise the text", "Translate it", "Shorten it"]))

    assert status.status == "complete"
    assert status.execution_order == [0, 1, 2]
    assert status.output == "SHORT-THREE"
    assert [step.result for step in status.steps] == [
        "SUMMARY-ONE",
        "TRANSLATION-TWO",
        "SHORT-THREE",
    ]
    first, second, third = fake_llm.requests
    assert "CONTEXT-TEXT" in first.last_user_message
    assert "SUMMARY-ONE" in second.last_user_message
    assert "CONTEXT-TEXT" not in second.prompt_text
    assert "TRANSLATION-TWO" in third.last_user_message
    assert "SUMMARY-ONE" not in third.prompt_text
    assert all(r.api == "chat" and r.model == "gpt-5-nano" for r in fake_llm.requests)
    assert [step.usage.total_tokens for step in status.steps] == [8, 18, 2]
    assert (status.usage.input_tokens, status.usage.output_tokens) == (11, 17)
    assert status.usage.total_tokens == 28
    assert all(step.started_at and step.finished_at for step in status.steps)


async def test_anthropic_provider_with_default_and_chosen_model(
    llm_engine: Engine, fake_llm: FakeLLMServer
):
    fake_llm.when("First", provider="anthropic").reply("CLAUDE-ONE", usage=(4, 2))

    status = await run(llm_engine, payload(["First step", "Second step"], provider="anthropic"))
    assert status.status == "complete"
    assert status.steps[0].result == "CLAUDE-ONE"
    # The fake's default answer echoes "<model>: <prompt>", so step 2 shows what it was sent.
    assert status.output is not None and status.output.startswith("claude-haiku-4-5: Second step")
    assert "CLAUDE-ONE" in status.output
    assert all(r.api == "messages" for r in fake_llm.requests)
    assert fake_llm.requests[0].api_key == "sk-ant-test"
    assert status.steps[0].usage.total_tokens == 6

    fake_llm.reset()
    await run(llm_engine, payload(["Only step"], provider="anthropic", model="claude-test-model"))
    assert fake_llm.last_request.model == "claude-test-model"


async def test_legacy_format_runs_two_chained_llm_steps(
    llm_engine: Engine, fake_llm: FakeLLMServer
):
    fake_llm.when("Extract").reply("FACTS")
    run_input = InstructionRunInput.model_validate(
        {
            "context": "LEGACY-CONTEXT",
            "firstInstruction": "Extract the facts",
            "secondInstruction": "Write a haiku",
        }
    )
    status = await run(llm_engine, run_input)
    assert status.status == "complete"
    assert [step.type for step in status.steps] == ["llm", "llm"]
    assert status.execution_order == [0, 1]
    assert "FACTS" in fake_llm.requests[1].last_user_message
    assert "LEGACY-CONTEXT" not in fake_llm.requests[1].prompt_text


@pytest.mark.parametrize(
    ("provider", "status_code"),
    [("openai", 429), ("openai", 500), ("anthropic", 529), ("anthropic", 429)],
)
async def test_provider_errors_are_retried_then_succeed(
    llm_engine: Engine, fake_llm: FakeLLMServer, provider: str, status_code: int
):
    fake_llm.fail(status_code, times=2)
    fake_llm.when("Summarise").reply("FINALLY")
    status = await run(llm_engine, payload(["Summarise"], provider=provider))
    assert status.status == "complete"
    assert status.output == "FINALLY"
    assert len(fake_llm.requests) == 3


async def test_provider_errors_past_the_retries_fail_the_run(
    llm_engine: Engine, fake_llm: FakeLLMServer
):
    fake_llm.when("Summarise").reply("SUMMARY")
    fake_llm.when("Translate").fail(500)
    status = await run_failing(llm_engine, payload(["Summarise", "Translate", "Shorten"]))

    assert len(prompts_with(fake_llm, "Translate")) == 4  # 3 retries
    assert [step.status for step in status.steps] == ["completed", "failed", "skipped"]
    error = status.steps[1].error
    assert error is not None
    assert (error.type, error.attempts) == ("LlmProviderError", 4)
    assert "500" in error.message
    assert status.error is not None and status.error.step == 1
    assert status.output == "SUMMARY"
    assert status.execution_order == [0, 1]


async def test_rejected_request_fails_at_once(llm_engine: Engine, fake_llm: FakeLLMServer):
    fake_llm.fail(404, message="The model `gpt-nope` does not exist.")
    status = await run_failing(llm_engine, payload(["Summarise"], model="gpt-nope"))
    assert len(fake_llm.requests) == 1
    error = status.steps[0].error
    assert error is not None
    assert (error.type, error.attempts) == ("LlmRequestRejected", 1)
    assert "gpt-nope" in error.message


async def test_unconfigured_provider_fails_at_once_naming_the_env_vars(
    time_skipping_env, redis_url: str, fake_llm: FakeLLMServer
):
    settings = make_settings(
        time_skipping_env.client, redis_url, **llm_settings(fake_llm, anthropic=False)
    )
    async for engine in _run_workers(time_skipping_env.client, settings, []):
        status = await run_failing(engine, payload(["Summarise"], provider="anthropic"))
    assert fake_llm.requests == []
    assert status.error is not None
    assert status.error.type == "ProviderNotConfigured"
    assert "ANTHROPIC_API_KEY" in status.error.message
    assert "ANTHROPIC_BASE_URL" in status.error.message
    assert status.steps[0].error is not None and status.steps[0].error.attempts == 1


async def test_status_query_shows_progress_while_running(
    llm_engine: Engine, fake_llm: FakeLLMServer
):
    fake_llm.when("Fast").reply("FAST-RESULT")
    slow = fake_llm.when("Slow").reply("SLOW-RESULT", delay=1.5)
    handle = await start(llm_engine, payload(["Fast step", "Slow step", "Last step"]))

    async def second_step_running() -> InstructionRunStatus | None:
        status = await handle.query(InstructionWorkflow.get_status)
        return status if status.steps[1].status == "running" else None

    status = await wait_until(second_step_running)
    assert status.status == "running"
    assert status.steps[0].status == "completed"
    assert status.steps[0].result == "FAST-RESULT"
    assert status.steps[2].status == "pending"
    assert status.output == "FAST-RESULT"
    assert status.execution_order == [0, 1]

    async def finished() -> InstructionRunStatus | None:
        status = await handle.query(InstructionWorkflow.get_status)
        return status if status.status == "complete" else None

    await wait_until(finished)
    final = await handle.result()
    assert final.execution_order == [0, 1, 2]
    assert final.steps[1].result == "SLOW-RESULT"
    assert slow.hits == 1


async def test_step_budget_stops_the_run(llm_engine: Engine, fake_llm: FakeLLMServer):
    run_input = payload(["One", "Two", "Three"])
    run_input.engine.step_budget = 2
    status = await run_failing(llm_engine, run_input)
    assert status.error is not None
    assert status.error.type == "StepBudgetExceeded"
    assert status.error.step == 2
    assert status.execution_order == [0, 1]
    assert status.steps[2].status == "skipped"


# --- conditions --------------------------------------------------------------------------------


def branching(condition: dict[str, Any]) -> list[Any]:
    return [
        {"instruction": "Classify the ticket", "condition": condition},
        "Escalate the ticket",
        "Archive the ticket",
        "Report on the ticket",
    ]


@pytest.mark.parametrize(
    ("answer", "verdict", "order", "skipped"),
    [("this is URGENT-ish: urgent", True, [0, 1, 3], 2), ("all calm", False, [0, 2, 3], 1)],
)
async def test_deterministic_condition_takes_each_branch(
    llm_engine: Engine,
    fake_llm: FakeLLMServer,
    answer: str,
    verdict: bool,
    order: list[int],
    skipped: int,
):
    fake_llm.when("Classify").reply(answer)
    fake_llm.when("Escalate").reply("ESCALATED")
    fake_llm.when("Archive").reply("ARCHIVED")
    status = await run(
        llm_engine,
        payload(
            branching({"expression": "result contains 'urgent'", "ifTrue": [1], "ifFalse": [2]})
        ),
    )
    assert status.execution_order == order
    assert status.steps[skipped].status == "skipped"
    assert prompts_with(fake_llm, ["Escalate", "Archive"][skipped - 1]) == []
    condition = status.steps[0].condition
    assert condition is not None
    assert (condition.mode, condition.verdict, condition.reason) == ("deterministic", verdict, None)
    assert condition.evaluated_step == 0
    assert condition.next_steps == [order[1]]
    # The branch ran on the classifier's result, and the step after it on the branch's.
    branch_prompt = fake_llm.requests[1].last_user_message
    assert answer in branch_prompt
    assert ("ESCALATED" if verdict else "ARCHIVED") in fake_llm.requests[2].last_user_message
    # Only the LLM steps were billed; the deterministic condition cost nothing.
    assert len(fake_llm.requests) == 3


async def test_each_events_progress_counts_the_steps_as_they_were(
    llm_engine: Engine, fake_llm: FakeLLMServer
):
    fake_llm.when("Classify").reply("urgent: the server is down")
    fake_llm.when("Escalate").reply("ESCALATED")
    fake_llm.when("Archive").reply("ARCHIVED")
    handle = await start(
        llm_engine,
        payload(
            branching({"expression": "result contains 'urgent'", "ifTrue": [1], "ifFalse": [2]})
        ),
    )
    status = await handle.result()
    page = await handle.query(InstructionWorkflow.get_events, EventsQuery())
    progress = [(event["event"], event["progress"]) for event in page.events]
    total = len(status.steps)
    # Counted as steps change, never rescanned: each event sees the counts of its moment.
    assert progress[0] == (
        "workflow.started",
        {"completed": 0, "failed": 0, "skipped": 0, "total": total},
    )
    completed = [p["completed"] for event, p in progress if event == "step.completed"]
    assert completed == list(range(1, len(completed) + 1))
    last = progress[-1]
    assert last[0] == "workflow.completed"
    assert last[1] == {
        "completed": sum(s.status == "completed" for s in status.steps),
        "failed": 0,
        "skipped": sum(s.status == "skipped" for s in status.steps),
        "total": total,
    }
    assert last[1]["skipped"] == 1


@pytest.mark.parametrize("verdict", [True, False])
@pytest.mark.parametrize(
    ("expression", "mode"),
    [("the customer sounds angry", None), ("result contains 'angry'", "llm")],
)
async def test_llm_condition_takes_each_branch_and_records_the_reason(
    llm_engine: Engine,
    fake_llm: FakeLLMServer,
    verdict: bool,
    expression: str,
    mode: str | None,
):
    fake_llm.when("Classify").reply("I am not happy with this")
    fake_llm.when("Condition:").reply_json(
        {"verdict": verdict, "reason": "the wording decides"}, usage=(10, 4)
    )
    condition: dict[str, Any] = {"expression": expression, "ifTrue": [1], "ifFalse": [2]}
    if mode:
        condition["mode"] = mode
    status = await run(llm_engine, payload(branching(condition)))

    order = [0, 1, 3] if verdict else [0, 2, 3]
    assert status.execution_order == order
    recorded = status.steps[0].condition
    assert recorded is not None
    assert (recorded.mode, recorded.verdict, recorded.reason) == (
        "llm",
        verdict,
        "the wording decides",
    )
    judged = prompts_with(fake_llm, "Condition:")
    assert len(judged) == 1
    assert expression in judged[0].last_user_message
    assert "I am not happy with this" in judged[0].last_user_message
    assert judged[0].json_schema is not None  # structured output was asked for
    assert status.steps[0].usage.total_tokens > 14  # the step's call plus the verdict's


async def test_unparseable_verdicts_are_retried(llm_engine: Engine, fake_llm: FakeLLMServer):
    fake_llm.when("Condition:").reply("hmm, hard to say", times=1)
    fake_llm.when("Condition:").reply("Yes, clearly.")
    status = await run(
        llm_engine,
        payload(branching({"expression": "it is a question", "ifTrue": [1], "ifFalse": [2]})),
    )
    assert status.execution_order == [0, 1, 3]
    assert len(prompts_with(fake_llm, "Condition:")) == 2


async def test_condition_step_branches_on_the_previous_result_and_passes_it_through(
    llm_engine: Engine, fake_llm: FakeLLMServer
):
    fake_llm.when("Fetch").reply('{"status": "ok", "items": 3}')
    status = await run(
        llm_engine,
        payload(
            [
                "Fetch the data",
                {
                    "type": "condition",
                    "expression": "result.status == 'ok' and result.items > 2",
                    "ifTrue": [2],
                    "ifFalse": [3],
                },
                "Use the data",
                "Apologise",
            ]
        ),
    )
    assert status.execution_order == [0, 1, 2]
    assert status.steps[1].result == '{"status": "ok", "items": 3}'
    assert status.steps[3].status == "skipped"
    assert '"items": 3' in prompts_with(fake_llm, "Use the data")[0].last_user_message
    assert status.steps[1].condition is not None
    assert status.steps[1].condition.evaluated_step == 0


async def test_no_step_runs_twice_even_when_a_branch_points_back(
    llm_engine: Engine, fake_llm: FakeLLMServer
):
    for n in ("zero", "one", "two"):
        fake_llm.when(f"Step {n}").reply(f"RESULT-{n}")
    status = await run(
        llm_engine,
        payload(
            [
                {
                    "instruction": "Step zero",
                    "condition": {"expression": "length > 0", "ifTrue": [1]},
                },
                {
                    "instruction": "Step one",
                    "condition": {"expression": "length > 0", "ifTrue": [2, 1]},
                },
                {
                    "instruction": "Step two",
                    "condition": {"expression": "length > 0", "ifTrue": [1]},
                },
            ]
        ),
    )
    assert status.execution_order == [0, 1, 2]
    assert [len(prompts_with(fake_llm, f"Step {n}")) for n in ("zero", "one", "two")] == [
        1,
        1,
        1,
    ]
    assert status.steps[2].condition is not None
    assert status.steps[2].condition.next_steps == [1]


# --- endpoints ---------------------------------------------------------------------------------


async def test_endpoint_renders_result_and_context_and_returns_the_body(
    llm_engine: Engine, fake_llm: FakeLLMServer, targets: Targets
):
    key = unique("ep")
    fake_llm.when("Name a city").reply("Lyon")
    status = await run(
        llm_engine,
        payload(
            [
                "Name a city",
                {
                    "type": "endpoint",
                    "apiUrl": f"{targets.url}/echo/{key}",
                    "method": "post",
                    "headers": {"X-City": "{{result}}"},
                    "body": {"city": "{{ result }}", "about": "{{context}}", "n": 2},
                },
                "Describe the response",
            ]
        ),
    )
    assert status.status == "complete"
    sent = targets.state.requests[key][0]
    assert sent["json"] == {"city": "Lyon", "about": "CONTEXT-TEXT", "n": 2}
    assert sent["headers"]["x-city"] == "Lyon"
    body = json.loads(status.steps[1].result or "")
    assert body["json"]["city"] == "Lyon"
    assert status.steps[1].result in prompts_with(fake_llm, "Describe")[0].last_user_message


async def test_endpoint_retries_then_succeeds(llm_engine: Engine, targets: Targets):
    key = unique("flaky")
    status = await run(
        llm_engine,
        payload(
            [
                {
                    "type": "endpoint",
                    "apiUrl": f"{targets.url}/flaky/{key}?failures=2",
                    "method": "GET",
                    "retries": 3,
                    "retryDelay": 200,
                    "timeout": 5000,
                }
            ]
        ),
    )
    assert status.status == "complete"
    assert targets.state.calls[key] == 3
    assert json.loads(status.output or "") == {"ok": True, "calls": 3}
    assert status.usage.total_tokens == 0


async def test_endpoint_plain_text_body_is_the_result(llm_engine: Engine, targets: Targets):
    key = unique("text")
    status = await run(
        llm_engine, payload([{"type": "endpoint", "apiUrl": f"{targets.url}/text/{key}"}])
    )
    assert status.output == f"plain text for {key}"


@pytest.mark.parametrize(
    ("path", "retries", "calls", "error_type"),
    [("status/{key}/404", 3, 1, "HttpClientError"), ("status/{key}/500", 1, 2, "HttpServerError")],
)
async def test_endpoint_failure_fails_the_run(
    llm_engine: Engine, targets: Targets, path: str, retries: int, calls: int, error_type: str
):
    key = unique("down")
    status = await run_failing(
        llm_engine,
        payload(
            [
                {
                    "type": "endpoint",
                    "apiUrl": f"{targets.url}/{path.format(key=key)}",
                    "retries": retries,
                    "retryDelay": 100,
                },
                "Never runs",
            ]
        ),
    )
    assert targets.state.calls[key] == calls
    error = status.steps[0].error
    assert error is not None
    assert (error.type, error.attempts) == (error_type, calls)
    assert status.steps[1].status == "skipped"
    assert status.error is not None and status.error.step == 0


async def test_a_call_the_proxy_format_cannot_carry_fails_the_step(llm_engine: Engine):
    # Two hours is a valid instruction timeout, but past the seed format's one-hour cap: the
    # step fails with a clear error before anything is sent to the proxy.
    status = await run_failing(
        llm_engine,
        payload(
            [
                {
                    "type": "endpoint",
                    "endpointUrl": "https://proxy.invalid/call",
                    "apiUrl": "https://api.invalid/x",
                    "timeout": 7_200_000,
                }
            ]
        ),
    )
    error = status.steps[0].error
    assert error is not None and error.type == "InvalidRequest"
    assert "timeout" in error.message


# --- threads -----------------------------------------------------------------------------------


def thread_run(output_format: str, collect: list[int], check: dict[str, Any] | None) -> list[Any]:
    thread: dict[str, Any] = {
        "type": "thread",
        "collectFromSteps": collect,
        "outputFormat": output_format,
    }
    if check is not None:
        thread["completionCheck"] = check
    return [
        "Alpha",
        {
            "instruction": "Beta",
            "condition": {"expression": "result contains 'never'", "ifTrue": [2]},
        },
        "Gamma",
        thread,
    ]


EXPECTED_THREADS = {
    "numbered": "1. ALPHA-OUT\n2. BETA-OUT\n3. (skipped)",
    "markdown": "## Step 0\n\nALPHA-OUT\n\n## Step 1\n\nBETA-OUT\n\n## Step 2\n\n(skipped)",
    "json": json.dumps(
        [
            {"step": 0, "status": "ran", "result": "ALPHA-OUT"},
            {"step": 1, "status": "ran", "result": "BETA-OUT"},
            {"step": 2, "status": "skipped", "result": None},
        ],
        indent=2,
    ),
}


@pytest.mark.parametrize("output_format", ["numbered", "markdown", "json"])
async def test_thread_formats_and_default_check_finds_a_skipped_step_incomplete(
    llm_engine: Engine, fake_llm: FakeLLMServer, output_format: str
):
    fake_llm.when("Alpha").reply("ALPHA-OUT")
    fake_llm.when("Beta").reply("BETA-OUT")
    status = await run(llm_engine, payload(thread_run(output_format, [0, 1, 2], None)))
    assert status.execution_order == [0, 1, 3]
    assert status.steps[3].result == EXPECTED_THREADS[output_format]
    assert status.output == EXPECTED_THREADS[output_format]
    assert status.steps[3].thread is not None
    assert status.steps[3].thread.complete is False


@pytest.mark.parametrize(
    ("collect", "check", "complete"),
    [
        ([0, 1], None, True),
        ([0, 1], {"mode": "deterministic"}, True),
        ([0, 1, 2], {"mode": "deterministic", "expression": "result contains 'ALPHA-OUT'"}, True),
        ([0, 1], {"mode": "deterministic", "expression": "result contains 'GAMMA'"}, False),
    ],
)
async def test_thread_deterministic_checks(
    llm_engine: Engine,
    fake_llm: FakeLLMServer,
    collect: list[int],
    check: dict[str, Any] | None,
    complete: bool,
):
    fake_llm.when("Alpha").reply("ALPHA-OUT")
    fake_llm.when("Beta").reply("BETA-OUT")
    status = await run(llm_engine, payload(thread_run("numbered", collect, check)))
    assert status.steps[3].thread is not None
    assert status.steps[3].thread.complete is complete
    assert len(fake_llm.requests) == 2  # no LLM call for the check


@pytest.mark.parametrize("verdict", [True, False])
async def test_thread_llm_check_asks_the_model(
    llm_engine: Engine, fake_llm: FakeLLMServer, verdict: bool
):
    fake_llm.when("Alpha").reply("ALPHA-OUT")
    fake_llm.when("Beta").reply("BETA-OUT")
    fake_llm.when("Condition:").reply_json({"verdict": verdict, "reason": "judged"})
    status = await run(
        llm_engine,
        payload(thread_run("markdown", [0, 1], {"mode": "llm", "expression": "both parts agree"})),
    )
    assert status.steps[3].thread is not None
    assert status.steps[3].thread.complete is verdict
    judged = prompts_with(fake_llm, "Condition:")
    assert len(judged) == 1
    assert "both parts agree" in judged[0].last_user_message
    assert "## Step 1\n\nBETA-OUT" in judged[0].last_user_message


# --- routers -----------------------------------------------------------------------------------


def router_run(targets: Targets, weather: str, news: str) -> list[Any]:
    return [
        "Read the question",
        {
            "type": "router",
            "description": "Pick a data source",
            "evaluationPrompt": "Which API answers the question?",
            "options": [
                {
                    "id": "weather",
                    "name": "Weather API",
                    "description": "forecasts",
                    "endpoint": {
                        "apiUrl": f"{targets.url}/echo/{weather}",
                        "method": "POST",
                        "body": {"q": "{{result}}"},
                    },
                },
                {
                    "id": "news",
                    "name": "News API",
                    "description": "headlines",
                    "endpoint": {"apiUrl": f"{targets.url}/echo/{news}", "method": "GET"},
                },
            ],
            "defaultOption": "news",
        },
    ]


async def test_router_calls_the_chosen_option(
    llm_engine: Engine, fake_llm: FakeLLMServer, targets: Targets
):
    weather, news = unique("weather"), unique("news")
    fake_llm.when("Read the question").reply("Will it rain in Lyon?")
    fake_llm.when("Options:").reply_json({"option_id": "weather", "reason": "about rain"})
    status = await run(llm_engine, payload(router_run(targets, weather, news)))

    decision = status.steps[1].router
    assert decision is not None
    assert (decision.chosen, decision.fallback_used, decision.reason) == (
        "weather",
        False,
        "about rain",
    )
    assert targets.state.calls[weather] == 1 and targets.state.calls[news] == 0
    assert targets.state.requests[weather][0]["json"] == {"q": "Will it rain in Lyon?"}
    asked = prompts_with(fake_llm, "Options:")[0]
    assert "Will it rain in Lyon?" in asked.last_user_message
    assert asked.json_schema is not None
    assert asked.json_schema["properties"]["option_id"]["enum"] == ["weather", "news"]
    assert json.loads(status.output or "")["method"] == "POST"


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(lambda fake: fake.when("Options:").reply("I cannot decide"), id="no-option"),
        pytest.param(lambda fake: fake.when("Options:").fail(400), id="rejected"),
    ],
)
async def test_router_falls_back_to_the_default_option(
    llm_engine: Engine, fake_llm: FakeLLMServer, targets: Targets, script: Any
):
    weather, news = unique("weather"), unique("news")
    script(fake_llm)
    status = await run(llm_engine, payload(router_run(targets, weather, news)))
    decision = status.steps[1].router
    assert decision is not None
    assert (decision.chosen, decision.fallback_used) == ("news", True)
    assert decision.reason
    assert targets.state.calls[news] == 1 and targets.state.calls[weather] == 0
    assert status.status == "complete"


async def test_router_with_anthropic_uses_a_forced_tool(
    llm_engine: Engine, fake_llm: FakeLLMServer, targets: Targets
):
    weather, news = unique("weather"), unique("news")
    fake_llm.when("Options:").reply_json({"option_id": "news", "reason": "headlines"})
    status = await run(
        llm_engine, payload(router_run(targets, weather, news), provider="anthropic")
    )
    decision = status.steps[1].router
    assert decision is not None
    assert (decision.chosen, decision.fallback_used) == ("news", False)
    assert prompts_with(fake_llm, "Options:")[0].forced_tool is not None
    assert targets.state.calls[news] == 1


# --- the bundled examples ----------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEMO_URL = "http://127.0.0.1:8001"


@pytest.mark.parametrize("name", ["instructions_basic.json", "instructions_all_types.json"])
def test_examples_are_valid_runs(name: str) -> None:
    InstructionRunInput.model_validate_json((EXAMPLES / name).read_text())


async def test_all_types_example_runs_against_the_demo_service(
    llm_engine: Engine, fake_llm: FakeLLMServer
):
    from examples.demo_service import app

    async with serve(app) as demo_url:
        text = (EXAMPLES / "instructions_all_types.json").read_text()
        run_input = InstructionRunInput.model_validate_json(text.replace(DEMO_URL, demo_url))
        status = await run(llm_engine, run_input)

    kinds = {step.type for step in status.steps}
    assert kinds == {"llm", "condition", "endpoint", "thread", "router"}
    assert status.status == "complete"
    # The fake judges every condition true and picks the first router option.
    assert status.execution_order == [0, 1, 2, 3, 5, 6, 7, 8]
    assert status.steps[4].status == "skipped"
    assert "Durable execution" in (status.steps[0].result or "")
    assert status.steps[5].router is not None and status.steps[5].router.chosen == "keywords"
    assert json.loads(status.steps[6].result or "")["ok"] is True
    assert status.steps[7].thread is not None and status.steps[7].thread.complete is True
    report = json.loads(status.output or "")["report"]
    assert report["topic"] == "temporal"
    assert report["thread"].startswith("## Step 1")


async def test_run_timeout_errors_the_run_and_stops_the_running_step(
    engine: Engine, targets: Targets
) -> None:
    key = unique("stuck")
    run_input = payload(
        [
            {"type": "endpoint", "apiUrl": f"{targets.url}/echo/{key}"},
            {"type": "endpoint", "apiUrl": f"{targets.url}/hang/{key}", "method": "POST"},
            {"type": "endpoint", "apiUrl": f"{targets.url}/echo/{key}"},
        ]
    )
    run_input.engine.run_timeout_seconds = 1.5
    started = time.monotonic()

    status = await run_failing(engine, run_input)

    assert time.monotonic() - started < 15
    assert status.error is not None
    assert (status.error.type, status.error.step) == ("TimedOut", 1)
    assert "run timeout of 1.5s" in status.error.message
    assert [step.status for step in status.steps] == ["completed", "failed", "skipped"]
    assert status.steps[1].error is not None
    assert status.steps[1].error.type == "TimedOut"


async def test_a_run_fails_once_its_token_budget_is_spent(
    llm_engine: Engine, fake_llm: FakeLLMServer
) -> None:
    fake_llm.when("First").reply("ONE", usage=(3, 5))
    fake_llm.when("Second").reply("TWO", usage=(7, 11))
    fake_llm.when("Third").reply("THREE", usage=(1, 1))
    run_input = payload(["First", "Second", "Third"])
    run_input.engine.token_budget = 20

    status = await run_failing(llm_engine, run_input)

    assert status.error is not None
    assert (status.error.type, status.error.step) == ("TokenBudgetExceeded", 1)
    assert "spent 26 tokens, more than its budget of 20" in status.error.message
    assert [step.status for step in status.steps] == ["completed", "failed", "skipped"]
    assert not prompts_with(fake_llm, "Third")


async def test_every_llm_call_is_bounded_by_a_default_max_tokens(
    llm_engine: Engine, fake_llm: FakeLLMServer
) -> None:
    await run(llm_engine, payload(["Summarise"]))
    await run(llm_engine, payload(["Summarise"], provider="anthropic"))
    chat, messages = fake_llm.requests
    assert chat.json["max_completion_tokens"] == 4096
    assert messages.json["max_tokens"] == 4096
