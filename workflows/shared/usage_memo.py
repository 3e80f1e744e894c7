"""A run's LLM spend in its Temporal memo, so `GET /runs` lists what each run cost without
reading each run's history or result.

Written once, as the run ends, by runs that called a model. It is a command (Temporal's
`ModifyWorkflowProperties`), so it is behind `workflow.patched`: runs recorded before it
replay without it.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

#: The memo's key.
USAGE_MEMO = "usage"
USAGE_MEMO_PATCH = "usage-memo"


def record_usage(
    input_tokens: int, output_tokens: int, cost_usd: float | None, unpriced_models: list[str]
) -> None:
    """Keep the run's totals in its memo, if it spent any tokens. Workflow code."""
    if input_tokens + output_tokens == 0 or not workflow.patched(USAGE_MEMO_PATCH):
        return
    usage: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": cost_usd,
        "unpriced_models": unpriced_models,
    }
    workflow.upsert_memo({USAGE_MEMO: usage})
