"""Admission: the rate limit and the monthly budget of DESIGN §5, decided before any upstream call.

Rate limits are the key's own (or the stage's defaults) counted in a DynamoDB window shared by
every instance; the budget reserves the request's worst-case cost while the month's committed
spend is under budget (docs/decisions/0003). Both are settled by one conditional write to the
key's month item, so a warm request waits for one DynamoDB round trip before the upstream call.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from mantle_gateway.core.call import Call
from mantle_gateway.core.pricing import PriceTable, worst_case_tokens
from mantle_gateway.errors import (
    BudgetExceededError,
    ModelNotPricedError,
    RateLimitError,
    ServiceUnavailableError,
)
from mantle_gateway.observability import logger, metric
from mantle_gateway.store.dynamo import StoreError
from mantle_gateway.store.limits import Ask, Verdict

if TYPE_CHECKING:
    from mantle_gateway.settings import Settings

_ZERO = Decimal(0)


class Limits(Protocol):
    def admit(self, ask: Ask) -> Verdict: ...

    def release(self, key_id: str, month: str, amount: Decimal) -> None: ...


class Admission:
    def __init__(self, *, settings: Settings, limits: Limits, prices: PriceTable) -> None:
        self._settings = settings
        self._limits = limits
        self._prices = prices

    def admit(self, call: Call) -> None:
        """Count the request against the key's rate window and reserve its worst-case cost, or
        refuse with 429 (a rate refusal first when both limits are reached)."""
        ask = self._ask(call)
        if not ask.rate_limited and ask.budget is None:
            return
        try:
            verdict = self._limits.admit(ask)
        except StoreError as exc:
            raise ServiceUnavailableError("The limit store is unavailable; try again.") from exc
        call.rate = verdict.rate
        if verdict.refused == "rate":
            assert verdict.rate is not None
            metric("RateLimitRefusals")
            reset = verdict.rate.reset_seconds
            raise RateLimitError(
                f"Rate limit reached for key {ask.key_id}; retry in {reset}s.",
                headers=dict(verdict.rate.headers()) | {"retry-after": str(reset)},
            )
        if verdict.refused == "budget":
            metric("BudgetRefusals")
            raise BudgetExceededError(
                f"Key {ask.key_id} has spent its monthly budget of {ask.budget} USD.",
                headers=dict(call.extra_headers),
            )
        call.reserved = ask.amount

    def _ask(self, call: Call) -> Ask:
        """The key's limits (the stage's defaults where it sets no rate) and, for a billable
        request under a budget, the worst-case cost to reserve."""
        key = call.key
        rpm = key.rpm if key.rpm is not None else self._settings.default_key_rpm
        tpm = key.tpm if key.tpm is not None else self._settings.default_key_tpm
        budget = key.monthly_budget_usd if call.route.billable else None
        amount = _ZERO
        if budget is not None:
            assert call.parsed is not None
            worst = worst_case_tokens(
                call.parsed.data,
                len(call.request.body),
                self._settings.budget_default_output_tokens,
            )
            cost = self._prices.cost(call.parsed.model, worst)
            if cost is None:  # nothing to reserve, so the budget could not hold: fail closed
                metric("ModelNotPricedRefusals")
                raise ModelNotPricedError.of(call.parsed.model, key.key_id)
            amount = cost
        return Ask(key.key_id, call.month, call.now, rpm, tpm, budget, amount)

    def release(self, call: Call) -> None:
        try:
            self._limits.release(call.key.key_id, call.month, call.reserved)
        except StoreError:
            logger.error(
                "budget_release_failed",
                extra={"key_id": call.key.key_id, "reserved_usd": str(call.reserved)},
            )
