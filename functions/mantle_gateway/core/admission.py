"""Admission: the rate limit and the monthly budget of DESIGN §5, decided before any upstream call.

Rate limits are the key's own (or the stage's defaults) counted in a DynamoDB window shared by
every instance; the request's worst case is reserved while the limits hold: its tokens in the
minute's window (tpm), its cost in the month's committed spend (budget), see
docs/decisions/0003. Both are settled by one conditional write to the key's month item, so a warm
request waits for one DynamoDB round trip before the upstream call.

A budget reservation is a hold that expires (docs/decisions/0006): when the admission write has
an unknown outcome (a timeout whose write may still apply), its hold is given back off the
client's path; holds past their expiry that an admission sees are swept off the path too, except
when they are what refuses this request, which is decided again once they are gone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from mantle_gateway.core.call import Call
from mantle_gateway.core.offpath import OffPath, Task
from mantle_gateway.core.pricing import PriceTable, worst_case_tokens
from mantle_gateway.errors import (
    BudgetExceededError,
    ModelNotPricedError,
    RateLimitError,
    ServiceUnavailableError,
)
from mantle_gateway.observability import logger, metric
from mantle_gateway.store.dynamo import StoreError
from mantle_gateway.store.limits import Ask, Hold, Reservation, Verdict

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mantle_gateway.settings import Settings

_ZERO = Decimal(0)
DEADLINE_SKEW_SECONDS = 30
"""Added to the door's deadline for a hold's expiry: the instances' clocks may differ."""


class Limits(Protocol):
    def admit(self, ask: Ask) -> Verdict: ...

    def release(self, reservation: Reservation) -> None: ...

    def sweep(self, key_id: str, month: str, holds: Sequence[Hold]) -> None: ...


class Admission:
    def __init__(
        self,
        *,
        settings: Settings,
        limits: Limits,
        prices: PriceTable,
        later: Callable[[str, Task], object] | None = None,
    ) -> None:
        self._settings = settings
        self._limits = limits
        self._prices = prices
        self._later = later or OffPath().submit
        """Runs work the client does not wait for (tests pass one that runs it at once)."""

    def admit(self, call: Call) -> None:
        """Count the request against the key's rate window and reserve its worst-case tokens and
        cost, or refuse with 429 (a rate refusal first when both limits are reached)."""
        ask = self._ask(call)
        if not ask.rate_limited and ask.budget is None:
            return
        verdict = self._decide(ask)
        if verdict.refused == "budget" and verdict.expired:
            verdict = self._decide_after_sweep(ask, verdict)
        elif verdict.expired:
            expired = verdict.expired
            self._later(
                f"sweep {ask.key_id} {ask.month}",
                lambda: self._limits.sweep(ask.key_id, ask.month, expired),
            )
        call.rate = verdict.rate
        if verdict.refused == "rate":
            assert verdict.rate is not None
            metric("RateLimitRefusals")
            reset = verdict.rate.reset_seconds
            raise RateLimitError(
                f"Rate limit reached for key {ask.key_id}; retry in {reset}s.",
                headers=dict(call.rate_headers) | {"retry-after": str(reset)},
            )
        if verdict.refused == "budget":
            metric("BudgetRefusals")
            raise BudgetExceededError(
                f"Key {ask.key_id} has spent its monthly budget of {ask.budget} USD.",
                headers=dict(call.extra_headers),
            )
        call.reservation = verdict.reservation

    def _decide(self, ask: Ask) -> Verdict:
        try:
            return self._limits.admit(ask)
        except StoreError as exc:
            if ask.holds:
                # The write may have applied (or still apply): give its hold back if it is there;
                # if it lands after this, it expires and a later admission sweeps it.
                assert ask.request_id is not None
                unknown = Reservation(ask.key_id, ask.month, ask.request_id, ask.amount)
                self._later(f"release {ask.request_id}", lambda: self._limits.release(unknown))
            raise ServiceUnavailableError("The limit store is unavailable; try again.") from exc

    def _decide_after_sweep(self, ask: Ask, refused: Verdict) -> Verdict:
        """The budget looks spent, but part of it is held by reservations that expired: release
        them and decide again, so no request is refused for a request that no longer runs."""
        try:
            self._limits.sweep(ask.key_id, ask.month, refused.expired)
        except StoreError:
            return refused
        return self._decide(ask)

    def _ask(self, call: Call) -> Ask:
        """The key's limits (the stage's defaults where it sets no rate) and, for a billable
        request, the worst case to reserve: its tokens under a tpm limit, its cost under a
        budget (held until the request's deadline, or the settings' bound)."""
        key = call.key
        rpm = key.rpm if key.rpm is not None else self._settings.default_key_rpm
        tpm = key.tpm if key.tpm is not None else self._settings.default_key_tpm
        budget = key.monthly_budget_usd if call.route.billable else None
        amount = _ZERO
        tokens = 0
        if call.route.billable and (budget is not None or tpm is not None):
            assert call.parsed is not None
            worst = worst_case_tokens(
                call.parsed.data,
                len(call.request.body),
                self._settings.budget_default_output_tokens,
            )
            tokens = worst.total
            if budget is not None:
                cost = self._prices.cost(call.parsed.model, worst)
                if cost is None:  # nothing to reserve, so the budget could not hold: fail closed
                    metric("ModelNotPricedRefusals")
                    raise ModelNotPricedError.of(call.parsed.model, key.key_id)
                amount = cost
        return Ask(
            key.key_id,
            call.month,
            call.now,
            rpm,
            tpm,
            budget,
            amount,
            tokens=tokens,
            request_id=call.request_id,
            expires=self._expiry(call),
        )

    def _expiry(self, call: Call) -> Decimal:
        """When a hold may be released: the request cannot settle after its deadline; without
        one (the local door), or for a background response that is billed when its owner reads
        it, after the settings' bound."""
        deadline = call.request.deadline
        background = call.parsed is not None and call.parsed.data.get("background") is True
        if deadline is not None and not background:
            return Decimal(math.ceil(deadline) + DEADLINE_SKEW_SECONDS)
        return Decimal(math.ceil(call.started + self._settings.reservation_expiry_seconds))

    def release(self, call: Call) -> None:
        """Give back what a request that will not be billed reserved."""
        reservation = call.reservation
        if reservation is None:
            return
        try:
            self._limits.release(reservation)
        except StoreError:
            logger.error(
                "budget_release_failed",
                extra={"key_id": call.key.key_id, "reserved_usd": str(reservation.usd)},
            )
