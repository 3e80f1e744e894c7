"""What an LLM call costs, and each tenant's daily LLM budget (`TENANT_BUDGETS`).

`Billing.admit` runs before a call: a tenant whose calls today (UTC) already cost its budget
or more is refused with the non-retryable `TenantBudgetExceeded`. `Billing.charge` runs after
it: the call is priced (`activities.pricing.models`), counted in the cost metric, and added to
the tenant's spend of the day in Redis with INCRBYFLOAT (atomic, so every worker adds to the
same total). A call is admitted on what was spent before it, so the calls in flight when the
budget is reached still finish: the overshoot is at most what they cost.

A Redis that cannot be read or written admits the call (logged): an outage of the store
should not stop every tenant's LLM calls, and the provider still bills each of them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError
from temporalio.exceptions import ApplicationError

from activities.llm.models import TokenUsage
from activities.pricing.models import ModelSpend, PriceTable
from activities.store.models import INTERNAL_KEY_ROOT
from kernel import errors
from kernel.errors import ErrorType
from kernel.metrics import count_llm_cost

log = logging.getLogger(__name__)

#: The tenant of runs started through the open gateway (no API keys configured).
OPEN_TENANT = "default"
#: A day's spend is kept a day past its end, for whoever reads it late.
SPEND_TTL_SECONDS = 2 * 24 * 3600


def spend_key(tenant: str, day: str) -> str:
    """The Redis key of a tenant's LLM spend (USD) on a UTC day (`YYYY-MM-DD`)."""
    return f"{INTERNAL_KEY_ROOT}:llm-spend:{tenant}:{day}"


class Billing:
    """Prices calls and keeps tenants within their daily budgets; one per worker process."""

    def __init__(
        self,
        prices: PriceTable,
        *,
        tenant_budgets: Mapping[str, float] | None = None,
        redis: Redis | None = None,
    ) -> None:
        self._prices = prices
        self._budgets = dict(tenant_budgets or {})
        self._redis = redis
        self._warned: set[str] = set()

    async def admit(self, tenant: str | None, label: str) -> None:
        """Refuse a call of a tenant past its daily budget.

        Raises:
            ApplicationError: `TenantBudgetExceeded`, non-retryable.
        """
        name = tenant or OPEN_TENANT
        budget = self._budgets.get(name)
        if budget is None or self._redis is None:
            return
        day = _today()
        try:
            raw = await self._redis.get(spend_key(name, day))
        except RedisError as exc:
            log.warning(
                "tenant %r: could not read today's LLM spend (%s); call admitted", name, exc
            )
            return
        spent = float(raw) if raw is not None else 0.0
        if spent >= budget:
            raise _over_budget(name, budget, spent, day, label)

    async def charge(
        self, tenant: str | None, provider: str, model: str, usage: TokenUsage
    ) -> TokenUsage:
        """`usage` priced: its cost, by model, or the model named unpriced; the cost is
        counted and added to the tenant's spend of the day."""
        cost = self._prices.cost_usd(model, usage.input_tokens, usage.output_tokens)
        spend = ModelSpend(
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cost_usd=cost
        )
        priced = usage.model_copy(
            update={
                "cost_usd": cost,
                "by_model": {model: spend},
                "unpriced_models": [model] if cost is None else [],
            }
        )
        if cost is None:
            self._warn_unpriced(model)
            return priced
        name = tenant or OPEN_TENANT
        count_llm_cost(name, provider, model, cost)
        if name in self._budgets and self._redis is not None and cost > 0:
            key = spend_key(name, _today())
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.incrbyfloat(key, cost)
                    pipe.expire(key, SPEND_TTL_SECONDS)
                    await pipe.execute()
            except RedisError as exc:
                log.warning(
                    "tenant %r: could not add %.6f USD to today's spend (%s)", name, cost, exc
                )
        return priced

    def _warn_unpriced(self, model: str) -> None:
        if model not in self._warned:
            self._warned.add(model)
            log.warning(
                "LLM model %r has no price (activities/pricing/prices.json, LLM_PRICES_FILE): its"
                " calls' cost_usd is null and budgets leave them out",
                model,
            )


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _over_budget(
    tenant: str, budget: float, spent: float, day: str, label: str
) -> ApplicationError:
    who = f"{label}: " if label else ""
    return errors.non_retryable(
        ErrorType.TENANT_BUDGET_EXCEEDED,
        f"{who}tenant {tenant!r} has spent {spent:.4f} USD on LLM calls today ({day} UTC),"
        f" its daily budget of {budget:g} USD (TENANT_BUDGETS)",
        {"tenant": tenant, "budget_usd": budget, "spent_usd": spent, "day": day},
    )
