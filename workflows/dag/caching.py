"""Which of a run's calls the result cache may answer (`PIPELINE_SETTINGS.cache`), and how a
cached answer shows in the step's state. The cache itself is the activities' business
(`activities.http.cache`): the workflow only says which calls may use it and for how long.
"""

from __future__ import annotations

from activities.http.models import HttpResult
from activities.llm.models import LlmText
from activities.store.models import ResultCaching
from workflows.dag.models import CacheSummary, DagRunInput, DagRunResult, StepConfig, StepState


def step_caching(run: DagRunInput, step: StepConfig) -> ResultCaching | None:
    """The caching of `step`'s call: named in `cache.steps`, or an `llm` step under
    `cache.llm`; None when it always calls."""
    cache = run.PIPELINE_SETTINGS.cache
    if cache is None:
        return None
    if step.step_name in cache.steps or (cache.llm and step.type == "llm"):
        return ResultCaching(ttl_seconds=cache.ttl_seconds)
    return None


def show_cached(run: DagRunResult, state: StepState, result: HttpResult | LlmText) -> None:
    """Say in the state that `result` came from the cache, and how old it was; count a hit,
    and the tokens a cached LLM answer had billed, in the run's `cache` block."""
    state.cached = result.cached
    state.cache_age_seconds = result.cache_age_seconds
    if not result.cached:
        return
    saved = run.cache or CacheSummary()
    run.cache = saved
    saved.hits += 1
    if isinstance(result, LlmText) and result.saved_usage is not None:
        saved.tokens_saved += result.saved_usage.input_tokens + result.saved_usage.output_tokens
