"""Admission is one conditional write to the key's month item (moto's server, real HTTP).

Each test uses its own key id, so the items never meet; clocks are fixed datetimes, so no test
depends on the minute it runs in. Two `LimitsStore`s on one table stand for two Lambda
instances: each guesses the window from what it saw last, and a wrong guess must cost one extra
write, never a wrong count.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from mantle_gateway.settings import Settings
from mantle_gateway.store.dynamo import Dynamo
from mantle_gateway.store.limits import Ask, LimitsStore, Reservation, spend_pk
from tests.support.dynamo_faults import DynamoTap, tapped

MINUTE = datetime(2026, 11, 24, 12, 0, 10, tzinfo=UTC)
NEXT_MINUTE = datetime(2026, 11, 24, 12, 1, 5, tzinfo=UTC)
MONTH = "2026-11"


@pytest.fixture
def key_id() -> str:
    return "k" + uuid.uuid4().hex[:12]


@pytest.fixture
def wire(settings: Settings) -> tuple[Dynamo, DynamoTap]:
    return tapped(settings)


@pytest.fixture
def dynamo(wire: tuple[Dynamo, DynamoTap]) -> Dynamo:
    """This module's stores' Dynamo: their calls are seen on the way (`writes`)."""
    return wire[0]


@pytest.fixture
def writes(wire: tuple[Dynamo, DynamoTap]) -> list[str]:
    """The DynamoDB operations the stores send while the test runs, in order."""
    return wire[1].sent


def store(dynamo: Dynamo, settings: Settings) -> LimitsStore:
    return LimitsStore(dynamo, settings.limits_table)


def item(dynamo: Dynamo, settings: Settings, key_id: str) -> dict[str, Any]:
    from mantle_gateway.store.dynamo import from_item

    answer = dynamo.client.get_item(
        TableName=settings.limits_table,
        Key={"pk": {"S": spend_pk(key_id, MONTH)}},
        ConsistentRead=True,
    )
    return from_item(answer.get("Item", {}))


def test_rate_window_counts_refuses_and_restarts_each_minute(
    dynamo: Dynamo, settings: Settings, key_id: str, writes: list[str]
) -> None:
    limits = store(dynamo, settings)
    ask = Ask(key_id, MONTH, MINUTE, rpm=2)

    first, second, third = (limits.admit(ask) for _ in range(3))

    assert (first.refused, second.refused, third.refused) == (None, None, "rate")
    assert first.rate is not None and first.rate.requests == 1
    assert second.rate is not None and second.rate.requests == 2
    assert third.rate is not None and dict(third.rate.headers()) == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "50s",
    }
    assert writes == ["UpdateItem"] * 3, "one write per request, the refused one included"
    assert item(dynamo, settings, key_id)["window_requests"] == 2, "a refusal counts nothing"

    writes.clear()
    later = limits.admit(Ask(key_id, MONTH, NEXT_MINUTE, rpm=2))
    assert later.refused is None
    assert later.rate is not None and later.rate.requests == 1
    assert writes == ["UpdateItem"], "this process knew the window had to start anew"
    assert item(dynamo, settings, key_id)["window"] == 202611241201


def test_a_wrong_guess_costs_one_more_write_never_a_wrong_count(
    dynamo: Dynamo, settings: Settings, key_id: str, writes: list[str]
) -> None:
    one, other = store(dynamo, settings), store(dynamo, settings)
    # GIVEN `one` started the window and `other` has never seen the key
    assert one.admit(Ask(key_id, MONTH, MINUTE, rpm=5)).refused is None
    writes.clear()
    # WHEN `other` guesses a fresh window, THEN it learns the current one and counts in it
    verdict = other.admit(Ask(key_id, MONTH, MINUTE, rpm=5))
    assert verdict.rate is not None and verdict.rate.requests == 2
    assert writes == ["UpdateItem", "UpdateItem"]
    writes.clear()
    assert other.admit(Ask(key_id, MONTH, MINUTE, rpm=5)).rate.requests == 3  # type: ignore[union-attr]
    assert writes == ["UpdateItem"], "and guesses right from then on"

    # WHEN `other` starts the next minute while `one` still believes in the old one
    assert other.admit(Ask(key_id, MONTH, NEXT_MINUTE, rpm=5)).rate.requests == 1  # type: ignore[union-attr]
    writes.clear()
    verdict = one.admit(Ask(key_id, MONTH, NEXT_MINUTE, rpm=5))
    # THEN `one` guessed "start it", found it started, and counted in it
    assert verdict.rate is not None and verdict.rate.requests == 2
    assert writes == ["UpdateItem", "UpdateItem"]


def test_a_clock_behind_counts_in_the_window_already_started(
    dynamo: Dynamo, settings: Settings, key_id: str
) -> None:
    ahead, behind = store(dynamo, settings), store(dynamo, settings)
    assert ahead.admit(Ask(key_id, MONTH, NEXT_MINUTE, rpm=2)).refused is None
    # An instance whose clock still says the previous minute may not reset the newer window.
    assert behind.admit(Ask(key_id, MONTH, MINUTE, rpm=2)).refused is None
    assert behind.admit(Ask(key_id, MONTH, MINUTE, rpm=2)).refused == "rate"
    stored = item(dynamo, settings, key_id)
    assert (stored["window"], stored["window_requests"]) == (202611241201, 2)


def test_rate_and_budget_in_one_write(
    dynamo: Dynamo, settings: Settings, key_id: str, writes: list[str]
) -> None:
    limits = store(dynamo, settings)
    ask = Ask(key_id, MONTH, MINUTE, rpm=3, budget=Decimal("1"), amount=Decimal("0.6"))

    assert limits.admit(ask).refused is None
    assert limits.admit(ask).refused is None  # committed 0.6 < 1: still admitted (overshoot 1)
    refused = limits.admit(ask)

    # THEN the third is over budget (not over rate: 2 < 3), and it changed nothing
    assert refused.refused == "budget"
    assert refused.rate is not None and refused.rate.requests == 2
    assert writes == ["UpdateItem"] * 3
    stored = item(dynamo, settings, key_id)
    assert stored["committed_usd"] == Decimal("1.2")
    assert stored["window_requests"] == 2

    # AND a rate refusal reserves nothing
    limits.release(Reservation(key_id, MONTH, None, Decimal("1.2")))  # two, without holds
    assert limits.admit(ask).refused is None
    assert limits.admit(ask).refused == "rate"
    assert item(dynamo, settings, key_id)["committed_usd"] == Decimal("0.6")


def test_budget_alone_and_zero_budget(dynamo: Dynamo, settings: Settings, key_id: str) -> None:
    limits = store(dynamo, settings)
    zero = limits.admit(Ask(key_id, MONTH, MINUTE, rpm=4, budget=Decimal(0)))
    assert zero.refused == "budget", "a budget of 0 refuses even before anything is spent"
    assert (
        zero.rate is not None and dict(zero.rate.headers())["x-ratelimit-remaining-requests"] == "4"
    )

    only_budget = Ask(key_id, MONTH, MINUTE, budget=Decimal("0.5"), amount=Decimal("0.5"))
    assert limits.admit(only_budget).refused is None
    assert limits.admit(only_budget).refused == "budget"
    assert "window" not in item(dynamo, settings, key_id), "no rate limit, no window"


def test_zero_rate_limit_refuses_without_a_write(
    dynamo: Dynamo, settings: Settings, key_id: str, writes: list[str]
) -> None:
    verdict = store(dynamo, settings).admit(Ask(key_id, MONTH, MINUTE, rpm=0))
    assert verdict.refused == "rate"
    assert writes == []


class RetriedAfterApplying:
    """A Dynamo whose first UpdateItem lands but whose answer is lost, so the call is sent again:
    what botocore does when a write's answer times out."""

    def __init__(self, dynamo: Dynamo) -> None:
        self._dynamo = dynamo
        self.client = dynamo.client
        self.sent = 0

    def call(self, fn: Any) -> Any:
        self.sent += 1
        if self.sent == 1:
            try:
                self._dynamo.call(fn)  # applied; the answer never arrives
            finally:
                self.sent += 1
        return self._dynamo.call(fn)


def test_a_retried_admission_that_had_applied_reserves_once(
    dynamo: Dynamo, settings: Settings, key_id: str
) -> None:
    # GIVEN an admission write whose first try applied, then was sent again
    retried = RetriedAfterApplying(dynamo)
    limits = LimitsStore(retried, settings.limits_table)  # type: ignore[arg-type]
    ask = Ask(
        key_id,
        MONTH,
        MINUTE,
        rpm=5,
        budget=Decimal("1"),
        amount=Decimal("0.25"),
        request_id="req-retried",
        expires=Decimal(2_000_000_000),
    )
    # WHEN it is admitted
    verdict = limits.admit(ask)
    # THEN it is admitted, counted once and reserved once
    assert verdict.refused is None
    assert retried.sent == 2
    found = item(dynamo, settings, key_id)
    assert found["committed_usd"] == Decimal("0.25")
    assert found["window_requests"] == 1
    assert verdict.rate is not None and verdict.rate.requests == 1
