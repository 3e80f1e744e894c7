"""Instruction runs' LLM calls follow the operator's LLM_FALLBACK_CHAIN: a worker configured
with one, the time-skipping environment, the real SDKs against the fake LLM server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.llm.models import ModelRef
from tests.conftest import Engine, _run_workers, llm_settings, make_settings
from tests.fakes.llm_server import FakeLLMServer
from tests.workflows.test_instruction_workflow import payload, run


@pytest.fixture
async def chained_engine(
    time_skipping_env: WorkflowEnvironment, redis_url: str, fake_llm: FakeLLMServer
) -> AsyncIterator[Engine]:
    settings = make_settings(
        time_skipping_env.client,
        redis_url,
        **llm_settings(fake_llm),
        llm_fallback_chain=[ModelRef(provider="anthropic", model="claude-backup")],
    )
    async for running in _run_workers(time_skipping_env.client, settings, []):
        yield running


async def test_an_overloaded_model_hands_the_instruction_to_the_operator_chain(
    chained_engine: Engine, fake_llm: FakeLLMServer
) -> None:
    fake_llm.when(model="gpt-5-nano").fail(529)
    fake_llm.when(model="claude-backup").reply("FROM-BACKUP", usage=(3, 2))

    status = await run(chained_engine, payload(["Summarise the text"]))

    assert status.status == "complete"
    assert status.output == "FROM-BACKUP"
    assert status.usage.total_tokens == 5
    # The step says who answered and which model it moved off, and why.
    step = status.steps[0]
    assert step.model == "claude-backup"
    assert [(hop.provider, hop.model) for hop in step.fallback] == [("openai", "gpt-5-nano")]
    assert "529" in step.fallback[0].reason
    assert [(r.provider, r.model) for r in fake_llm.requests] == [
        ("openai", "gpt-5-nano"),
        ("anthropic", "claude-backup"),
    ]
