"""The budget-alert marks' conditions, on DynamoDB (moto server): claim only when the spend has
reached the amount and only once, take over only the exact stale claim seen and never a sent
one, and the state read back as written — beside the spend the ledger keeps on the same item."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from mantle_gateway.store.alerts import AlertMarks, AlertState
from mantle_gateway.store.dynamo import Dynamo
from mantle_gateway.store.ledger import Ledger
from mantle_gateway.usage import TokenCounts, UsageRecord

MONTH = "2026-11"


@pytest.fixture
def marks(dynamo: Dynamo, settings) -> AlertMarks:
    return AlertMarks(dynamo, settings.limits_table)


@pytest.fixture
def spend(dynamo: Dynamo, settings):
    """Add spend to a key's month through the real ledger (item and spend in one transaction)."""
    ledger = Ledger(dynamo, usage_table=settings.usage_table, limits_table=settings.limits_table)

    def add(key_id: str, usd: str) -> None:
        record = UsageRecord(
            request_id=uuid.uuid4().hex,
            timestamp=f"{MONTH}-15T12:00:00.000000Z",
            key_id=key_id,
            model="m",
            tokens=TokenCounts(1, 1),
            cost_usd=Decimal(usd),
            status="ok",
            latency_ms=1,
            door="local",
            stream=False,
        )
        assert ledger.record(record)

    return add


def test_a_threshold_is_claimed_once_and_only_when_reached(marks, spend) -> None:
    key = "key_" + uuid.uuid4().hex[:12]
    assert marks.state(key, MONTH, (50, 80)) == AlertState()
    assert not marks.claim(key, MONTH, 50, Decimal(5), now=100.0)  # no spend at all yet

    spend(key, "4.99")
    assert not marks.claim(key, MONTH, 50, Decimal(5), now=101.0)
    spend(key, "0.01")
    assert marks.claim(key, MONTH, 50, Decimal(5), now=102.0)
    assert not marks.claim(key, MONTH, 50, Decimal(5), now=103.0)

    state = marks.state(key, MONTH, (50, 80))
    assert state.spent_usd == Decimal(5)
    assert (state.sent, dict(state.pending)) == (frozenset(), {50: Decimal("102.000")})


def test_only_the_exact_stale_claim_is_taken_over_and_never_once_sent(marks, spend) -> None:
    key = "key_" + uuid.uuid4().hex[:12]
    spend(key, "9")
    assert marks.claim(key, MONTH, 80, Decimal(8), now=200.0)
    seen = marks.state(key, MONTH, (80,)).pending[80]

    assert not marks.take_over(key, MONTH, 80, seen + 1, now=300.0)  # not the claim seen
    assert marks.take_over(key, MONTH, 80, seen, now=300.0)
    assert not marks.take_over(key, MONTH, 80, seen, now=301.0)  # someone took it: 300 now

    marks.mark_sent(key, MONTH, 80, now=302.0)
    state = marks.state(key, MONTH, (80,))
    assert (state.sent, dict(state.pending)) == (frozenset({80}), {})
    assert not marks.take_over(key, MONTH, 80, Decimal("300.000"), now=400.0)
    assert not marks.claim(key, MONTH, 80, Decimal(8), now=400.0)


def test_the_marks_leave_the_spend_and_other_months_alone(marks, spend) -> None:
    key = "key_" + uuid.uuid4().hex[:12]
    spend(key, "3")
    assert marks.claim(key, MONTH, 10, Decimal("0.3"), now=1.0)
    marks.mark_sent(key, MONTH, 10, now=2.0)
    spend(key, "1")

    assert marks.state(key, MONTH, (10,)).spent_usd == Decimal(4)
    assert marks.state(key, "2026-12", (10,)) == AlertState()
