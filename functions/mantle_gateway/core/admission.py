"""Admission: the rate limit and the monthly budget of DESIGN §5, decided before any upstream call.

Rate limits are the key's own (or the stage's defaults) counted in DynamoDB windows shared by
every instance; the budget reserves the request's worst-case cost while the month's committed
spend is under budget (docs/decisions/0003). When a request needs both, the two conditional
writes are sent at once, so it waits for one DynamoDB round trip, not two.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from mantle_gateway.core.call import Call
from mantle_gateway.core.pricing import PriceTable, worst_case_tokens
from mantle_gateway.errors import (
    BudgetExceededError,
    GatewayError,
    RateLimitError,
    ServiceUnavailableError,
)
from mantle_gateway.observability import logger, metric
from mantle_gateway.store.dynamo import StoreError
from mantle_gateway.store.limits import RateState

if TYPE_CHECKING:
    from mantle_gateway.settings import Settings
    from mantle_gateway.store.keys import KeyRecord

_ZERO = Decimal(0)


class Limits(Protocol):
    def admit(self, key_id: str, rpm: int | None, tpm: int | None, now: datetime) -> RateState: ...

    def reserve(self, key_id: str, month: str, budget: Decimal, amount: Decimal) -> bool: ...

    def release(self, key_id: str, month: str, amount: Decimal) -> None: ...


class Admission:
    def __init__(self, *, settings: Settings, limits: Limits, prices: PriceTable) -> None:
        self._settings = settings
        self._limits = limits
        self._prices = prices
        self._executor: ThreadPoolExecutor | None = None

    def admit(self, call: Call) -> None:
        """Rate limit, then budget; when both apply their two DynamoDB writes run at once, so a
        request waits for one round trip, not two (both are independent conditional updates)."""
        budgeted = call.route.billable and call.key.monthly_budget_usd is not None
        if not budgeted:
            call.rate = self._rate_limit(call.key, call.now)
            return
        if self._rates(call.key) == (None, None):
            self._reserve_budget(call)
            return
        rate = self._pool().submit(self._rate_limit, call.key, call.now)
        try:
            self._reserve_budget(call)
        except BudgetExceededError as refused:
            call.rate = rate.result()  # a rate refusal (raised here) comes first, as in order
            refused.headers.update(call.rate.headers() if call.rate else [])
            raise
        try:
            call.rate = rate.result()
        except GatewayError:
            self.release(call)  # refused by the rate limit: nothing will be billed
            raise

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="admission")
        return self._executor

    def _rates(self, key: KeyRecord) -> tuple[int | None, int | None]:
        """The key's rpm and tpm, or the stage's defaults where the key sets none."""
        rpm = key.rpm if key.rpm is not None else self._settings.default_key_rpm
        tpm = key.tpm if key.tpm is not None else self._settings.default_key_tpm
        return rpm, tpm

    def _rate_limit(self, key: KeyRecord, now: datetime) -> RateState | None:
        rpm, tpm = self._rates(key)
        if rpm is None and tpm is None:
            return None
        try:
            state = self._limits.admit(key.key_id, rpm, tpm, now)
        except StoreError as exc:
            raise ServiceUnavailableError("The limit store is unavailable; try again.") from exc
        if not state.admitted:
            metric("RateLimitRefusals")
            raise RateLimitError(
                f"Rate limit reached for key {key.key_id}; retry in {state.reset_seconds}s.",
                headers=dict(state.headers()) | {"retry-after": str(state.reset_seconds)},
            )
        return state

    def _reserve_budget(self, call: Call) -> None:
        """Reserve the request's worst-case cost while the month's committed sum is under budget."""
        budget = call.key.monthly_budget_usd
        if budget is None:
            return
        assert call.parsed is not None
        worst = worst_case_tokens(
            call.parsed.data, len(call.request.body), self._settings.budget_default_output_tokens
        )
        amount = self._prices.cost(call.parsed.model, worst) or _ZERO
        try:
            admitted = self._limits.reserve(call.key.key_id, call.month, budget, amount)
        except StoreError as exc:
            raise ServiceUnavailableError("The budget store is unavailable; try again.") from exc
        if not admitted:
            metric("BudgetRefusals")
            raise BudgetExceededError(
                f"Key {call.key.key_id} has spent its monthly budget of {budget} USD.",
                headers=dict(call.extra_headers),
            )
        call.reserved = amount

    def release(self, call: Call) -> None:
        try:
            self._limits.release(call.key.key_id, call.month, call.reserved)
        except StoreError:
            logger.error(
                "budget_release_failed",
                extra={"key_id": call.key.key_id, "reserved_usd": str(call.reserved)},
            )
