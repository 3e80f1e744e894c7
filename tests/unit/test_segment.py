"""`run_segment`: a fast run's connected steps as plain asyncio, given one HTTP attempt as a
function (the worker passes `HttpActivities.attempt`; here, small local stand-ins)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.http.models import HttpCall, HttpResult
from kernel import errors
from workflows.dag.models import StepConfig
from workflows.dag.segment import Segment, SegmentStep, run_segment, variables_read


def seg_step(name: str, *upstream: str, **overrides: Any) -> SegmentStep:
    config: dict[str, Any] = {
        "step_name": name,
        "usid": f"u-{name}",
        "service_url": f"http://target.test/{name}",
        "dependencies": list(upstream),
        "outputs": [f"{name}_out"],
    }
    config.update(overrides.pop("config", {}))
    return SegmentStep(
        config=StepConfig.model_validate(config),
        upstream=list(upstream),
        timeout_seconds=overrides.pop("timeout_seconds", 5.0),
        **overrides,
    )


def segment(*steps: SegmentStep, roots: list[str], **options: Any) -> Segment:
    return Segment(steps=list(steps), roots=roots, **options)


class Target:
    """Answers each call with its URL and body after `delay`, failing as told."""

    def __init__(self, delay: float = 0.0, fail: dict[str, list[ApplicationError]] | None = None):
        self.delay = delay
        self.fail = fail or {}
        self.calls: list[HttpCall] = []
        self.attempts: Counter[str] = Counter()
        self.running = 0
        self.most_running = 0
        self.cancelled: list[str] = []

    async def __call__(self, call: HttpCall, attempt: int) -> HttpResult:
        name = call.url.rsplit("/", 1)[-1]
        self.calls.append(call)
        self.attempts[name] += 1
        assert attempt == self.attempts[name]
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(float(call.query.get("delay", self.delay)))
        except asyncio.CancelledError:
            self.cancelled.append(name)
            raise
        finally:
            self.running -= 1
        failures = self.fail.get(name, [])
        if failures:
            raise failures.pop(0)
        return HttpResult(status=200, body={"name": name, "sent": call.body}, attempt=attempt)


async def test_steps_run_as_their_upstream_completes_with_templates_filled_in() -> None:
    target = Target()
    report = await run_segment(
        segment(
            seg_step("a"),
            seg_step("b", "a", config={"input_prep_config": {"body": {"got": "{{a_out.name}}"}}}),
            roots=["a"],
        ),
        target,
    )
    assert [item.name for item in report.steps] == ["a", "b"]
    b = report.steps[1].result
    assert b is not None and b.body["sent"] == {"got": "a"}


async def test_default_bodies_carry_the_upstream_results() -> None:
    target = Target()
    report = await run_segment(
        segment(
            seg_step("a"),
            seg_step("b", "a"),
            roots=["a"],
            original_input="hello",
            input_data={"k": 1},
        ),
        target,
    )
    b = report.steps[1].result
    assert b is not None
    assert b.body["sent"] == {
        "original_input": "hello",
        "input_data": {"k": 1},
        "dependencies": {
            "a": {
                "name": "a",
                "sent": {"original_input": "hello", "input_data": {"k": 1}, "dependencies": {}},
            }
        },
    }


async def test_no_more_than_max_parallel_steps_run_at_once() -> None:
    target = Target(delay=0.01)
    steps = [seg_step(f"s{i}") for i in range(8)]
    report = await run_segment(segment(*steps, roots=["s0"], max_parallel=3), target)
    assert sorted(item.name for item in report.steps) == [f"s{i}" for i in range(8)]
    assert target.most_running == 3


async def test_nothing_starts_past_the_checkpoint_but_the_roots() -> None:
    target = Target()
    report = await run_segment(
        segment(
            seg_step("a"),
            seg_step("b"),
            seg_step("c", "a"),
            roots=["a", "b"],
            checkpoint_seconds=0,
        ),
        target,
    )
    assert sorted(item.name for item in report.steps) == ["a", "b"]


async def test_a_retryable_failure_is_retried_with_the_steps_budget() -> None:
    target = Target(fail={"a": [errors.transport_error("connection reset")]})
    report = await run_segment(
        segment(seg_step("a", max_retries=1, retry_delay=0.01), roots=["a"]), target
    )
    [a] = report.steps
    assert a.result is not None and a.result.attempt == 2
    assert target.attempts["a"] == 2


async def test_retries_run_out() -> None:
    target = Target(
        fail={"a": [errors.transport_error("reset"), errors.transport_error("reset again")]}
    )
    report = await run_segment(
        segment(seg_step("a", max_retries=1, retry_delay=0.01), roots=["a"]), target
    )
    [a] = report.steps
    assert a.error is not None
    assert a.error.attempts == 2 and "reset again" in a.error.message


async def test_an_attempt_that_outlives_its_timeout_is_a_timeout() -> None:
    target = Target(delay=1.0)
    report = await run_segment(segment(seg_step("a", timeout_seconds=0.05), roots=["a"]), target)
    [a] = report.steps
    assert a.error is not None and a.error.type == errors.ErrorType.TIMEOUT
    assert "attempt timed out" in a.error.message


async def test_a_failed_step_cancels_what_runs_and_starts_nothing_more() -> None:
    refused = errors.http_status_error(400, "step 'bad': answered 400", details={"status": 400})
    target = Target(fail={"bad": [refused]})
    report = await run_segment(
        segment(
            seg_step("bad", max_retries=3),
            seg_step("slow", config={"input_prep_config": {"query": {"delay": 5}}}),
            seg_step("after", "bad"),
            seg_step("later", "slow"),
            roots=["bad", "slow"],
        ),
        target,
    )
    outcomes = {item.name: item for item in report.steps}
    assert set(outcomes) == {"bad", "slow"}
    bad = outcomes["bad"].error
    assert bad is not None and bad.http_status == 400 and bad.attempts == 1
    assert outcomes["slow"].cancelled
    assert target.cancelled == ["slow"]


async def test_a_template_that_cannot_render_fails_its_step() -> None:
    report = await run_segment(
        segment(
            seg_step("a", config={"service_url": "http://target.test/{{nowhere.x}}"}),
            roots=["a"],
        ),
        Target(),
    )
    [a] = report.steps
    assert a.error is not None and a.error.type == errors.ErrorType.TEMPLATE_ERROR
    assert "nowhere" in a.error.message


def test_a_step_reads_its_templates_roots_and_its_upstream_results() -> None:
    step = seg_step("b", "a", config={"service_url": "http://t/{{input_data.x}}/{{greeting.y[0]}}"})
    assert variables_read(step.config, step.upstream) == {"input_data", "greeting", "a_result"}


async def test_nothing_more_starts_once_the_results_fill_the_report() -> None:
    target = Target()
    steps = [seg_step("a"), seg_step("b", "a"), seg_step("c", "b")]
    # `a`'s result alone passes the bound: `b` does not start, the segment reports.
    report = await run_segment(segment(*steps, roots=["a"], report_max_bytes=10), target)
    assert [item.name for item in report.steps] == ["a"]
    whole = await run_segment(segment(*steps, roots=["a"]), Target())
    assert [item.name for item in whole.steps] == ["a", "b", "c"]
