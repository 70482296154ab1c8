"""Reservations against moto's server (real HTTP): tokens reserved in the minute's window and
settled there, budget holds released once whatever happens (settle, release, expiry sweep).

Clocks are fixed datetimes and each test has its own key, so nothing depends on the minute the
test runs in. `LimitsStore` and `Ledger` are the gateway's own stores on one table.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from mantle_gateway.settings import Settings
from mantle_gateway.store.dynamo import Dynamo
from mantle_gateway.store.ledger import ALREADY_PRESENT, REACHED, WRITTEN, Ledger
from mantle_gateway.store.limits import Ask, Hold, LimitsStore, Reservation, holds_in
from mantle_gateway.usage import TokenCounts, UsageRecord

MINUTE = datetime(2026, 11, 24, 12, 0, 10, tzinfo=UTC)
NEXT_MINUTE = datetime(2026, 11, 24, 12, 1, 5, tzinfo=UTC)
MONTH = "2026-11"
HOLD_SECONDS = 60


@pytest.fixture
def key_id() -> str:
    return "k" + uuid.uuid4().hex[:12]


@pytest.fixture
def limits(dynamo: Dynamo, settings: Settings) -> LimitsStore:
    return LimitsStore(dynamo, settings.limits_table)


@pytest.fixture
def ledger(dynamo: Dynamo, settings: Settings) -> Ledger:
    return Ledger(
        dynamo,
        usage_table=settings.usage_table,
        limits_table=settings.limits_table,
        sleep=lambda _s: None,
    )


def bill(key_id: str, request_id: str, *, tokens: int = 10, cost: str = "0") -> UsageRecord:
    return UsageRecord(
        request_id=request_id,
        timestamp="2026-11-24T12:00:10.000000Z",
        key_id=key_id,
        model="openai.gpt-oss-20b",
        tokens=TokenCounts(input=tokens // 2, output=tokens - tokens // 2),
        cost_usd=Decimal(cost),
        status="ok",
        latency_ms=5,
        door="local",
        stream=False,
    )


def budget_ask(key_id: str, request_id: str, now: datetime = MINUTE) -> Ask:
    return Ask(
        key_id,
        MONTH,
        now,
        budget=Decimal("1"),
        amount=Decimal("0.3"),
        request_id=request_id,
        expires=Decimal(int(now.timestamp()) + HOLD_SECONDS),
    )


def counters(limits: LimitsStore, key_id: str) -> dict[str, Any]:
    item = limits.item(key_id, MONTH)
    return {
        "committed": item.get("committed_usd", 0),
        "spent": item.get("spent_usd", 0),
        "holds": sorted(h.request_id for h in holds_in(item)),
        "window_tokens": item.get("window_tokens"),
    }


def test_tpm_reserves_the_worst_case_and_settles_in_its_own_window(
    limits: LimitsStore, ledger: Ledger, key_id: str
) -> None:
    def ask(request_id: str, now: datetime = MINUTE) -> Ask:
        return Ask(key_id, MONTH, now, tpm=100, tokens=40, request_id=request_id)

    # GIVEN requests that each may use 40 tokens, under tpm 100
    first, second, third, fourth = (limits.admit(ask(f"r{n}")) for n in range(4))
    # THEN each reserves 40 while the window is under the limit: the third crosses it, the
    # fourth is refused, and the headers count every reservation
    assert [v.refused for v in (first, second, third, fourth)] == [None, None, None, "rate"]
    remaining = [
        dict(v.rate.headers())["x-ratelimit-remaining-tokens"]  # type: ignore[union-attr]
        for v in (first, second, third, fourth)
    ]
    assert remaining == ["60", "20", "0", "0"]
    assert first.reservation == Reservation(key_id, MONTH, None, Decimal(0), 40, 202611241200)
    assert counters(limits, key_id)["window_tokens"] == 120

    # WHEN the first settles at its real 10 tokens, THEN the window holds 90 and admits again
    assert ledger.record(bill(key_id, "r0", tokens=10), first.reservation)
    assert counters(limits, key_id)["window_tokens"] == 90
    assert limits.admit(ask("r4")).refused is None

    # WHEN the next minute has started, THEN a late settle leaves the new window alone
    assert limits.admit(ask("r5", NEXT_MINUTE)).rate.tokens == 40  # type: ignore[union-attr]
    assert ledger.record(bill(key_id, "r1", tokens=10), second.reservation)
    after = limits.item(key_id, MONTH)
    assert (after["window"], after["window_tokens"]) == (202611241201, 40)
    assert after["requests"] == 2, "both were billed"


def test_a_release_gives_a_hold_back_once(limits: LimitsStore, key_id: str) -> None:
    verdict = limits.admit(budget_ask(key_id, "r1"))
    assert verdict.reservation == Reservation(key_id, MONTH, "r1", Decimal("0.3"))
    assert counters(limits, key_id) == {
        "committed": Decimal("0.3"),
        "spent": 0,
        "holds": ["r1"],
        "window_tokens": None,
    }
    limits.release(verdict.reservation)
    limits.release(verdict.reservation)  # a second release (or one for a write that never
    # applied) finds no hold and changes nothing
    assert counters(limits, key_id)["committed"] == 0
    assert counters(limits, key_id)["holds"] == []


def test_expired_holds_are_found_and_swept_once_and_late_settles_add_the_full_cost(
    limits: LimitsStore, ledger: Ledger, key_id: str
) -> None:
    # GIVEN a request admitted whose process died (it never settles or releases)
    dead = limits.admit(budget_ask(key_id, "dead"))
    # AND one admitted at the same time that settles late, after its hold expired
    late = limits.admit(budget_ask(key_id, "late"))
    # AND one that settled in time, before its hold was swept
    on_time = limits.admit(budget_ask(key_id, "on-time"))
    assert ledger.record(bill(key_id, "on-time", cost="0.1"), on_time.reservation)
    assert counters(limits, key_id)["committed"] == Decimal("0.7")

    # WHEN an admission comes before the expiry, THEN it sees nothing expired
    before = limits.admit(budget_ask(key_id, "early", MINUTE + timedelta(seconds=30)))
    assert before.expired == ()
    limits.release(before.reservation)  # type: ignore[arg-type]

    # WHEN an admission comes after the expiry, THEN it reports the two holds left
    later = MINUTE + timedelta(seconds=HOLD_SECONDS + 1)
    seen = limits.admit(budget_ask(key_id, "next", later))
    assert sorted(h.request_id for h in seen.expired) == ["dead", "late"]
    # AND sweeping them (twice: two instances may both try) gives their dollars back once
    limits.sweep(key_id, MONTH, seen.expired)
    limits.sweep(key_id, MONTH, seen.expired)
    assert counters(limits, key_id)["committed"] == Decimal("0.1") + Decimal("0.3")
    assert counters(limits, key_id)["holds"] == ["next"]

    # WHEN the late one settles after the sweep, THEN its full cost is committed
    assert ledger.write_item(bill(key_id, "late", cost="0.2").item(), late.reservation) == WRITTEN
    # AND writing it again is told apart from a failed settle: already present, nothing added
    assert (
        ledger.write_item(bill(key_id, "late", cost="0.2").item(), late.reservation)
        == ALREADY_PRESENT
    )
    state = counters(limits, key_id)
    assert state["committed"] == Decimal("0.1") + Decimal("0.2") + Decimal("0.3")
    assert state["spent"] == Decimal("0.3")
    assert dead.reservation is not None and state["holds"] == ["next"], "dead's hold is gone"

    # WHEN a request settles just before a sweep that saw its hold expired, THEN the sweep finds
    # no hold and releases nothing (no double release), while a hold still there in the same
    # sweep is released
    assert ledger.record(bill(key_id, "next", cost="0.05"), seen.reservation)
    stale = limits.admit(budget_ask(key_id, "stale")).reservation
    assert stale is not None
    limits.sweep(
        key_id,
        MONTH,
        [Hold("next", Decimal("0.3"), Decimal(0)), Hold("stale", Decimal("0.3"), Decimal(0))],
    )
    state = counters(limits, key_id)
    assert state["spent"] == Decimal("0.35")
    assert state["committed"] == Decimal("0.35")
    assert state["holds"] == []


def hold_gone_and_window_moved(limits: LimitsStore, key_id: str) -> Reservation:
    """A reservation of 0.3 USD and 40 tokens whose hold was swept (it expired) and whose
    minute window was replaced by a newer one holding 7 tokens: both settle conditions fail."""
    ask = Ask(
        key_id,
        MONTH,
        MINUTE,
        tpm=1000,
        budget=Decimal("1"),
        amount=Decimal("0.3"),
        tokens=40,
        request_id="gone",
        expires=Decimal(int(MINUTE.timestamp()) + HOLD_SECONDS),
    )
    admitted = limits.admit(ask)
    assert admitted.reservation is not None and admitted.reservation.window == 202611241200
    later = NEXT_MINUTE + timedelta(seconds=HOLD_SECONDS)
    swept = limits.admit(
        Ask(key_id, MONTH, later, tpm=1000, budget=Decimal("1"), tokens=7, request_id="n")
    )
    limits.sweep(key_id, MONTH, swept.expired)
    return admitted.reservation


def test_a_settle_whose_hold_is_gone_and_window_moved_still_bills_exactly(
    limits: LimitsStore, ledger: Ledger, key_id: str
) -> None:
    """Both conditions of the settle fail: the ledger reshapes twice, then writes."""
    reservation = hold_gone_and_window_moved(limits, key_id)
    assert ledger.record(bill(key_id, "gone", tokens=10, cost="0.2"), reservation)
    item = limits.item(key_id, MONTH)
    assert (item["committed_usd"], item["spent_usd"]) == (Decimal("0.2"), Decimal("0.2"))
    assert item["window_tokens"] == 7, "the settle did not touch the newer window"


def test_a_watched_amount_is_reported_by_the_write_that_reaches_it_and_by_no_other(
    limits: LimitsStore, ledger: Ledger, key_id: str
) -> None:
    """Budget alerts ask the ledger to watch the next threshold's amount: the write that takes
    the spend to it says so (REACHED), every other write says WRITTEN and bills the same."""
    watch = Decimal("0.5")
    outcomes = []
    for n, cost in enumerate(("0.2", "0.2", "0.2", "0.05")):
        admitted = limits.admit(budget_ask(key_id, f"w{n}"))
        outcomes.append(
            ledger.write_item(
                bill(key_id, f"w{n}", cost=cost).item(), admitted.reservation, watch=watch
            )
        )
    # 0 → 0.2 → 0.4 stay under 0.5; 0.4 → 0.6 reaches it; 0.6 → 0.65 was at it already
    assert outcomes == [WRITTEN, WRITTEN, REACHED, REACHED]
    state = counters(limits, key_id)
    assert (state["spent"], state["committed"], state["holds"]) == (Decimal("0.65"),) * 2 + ([],)

    # A write whose cost alone reaches the amount is known to reach it without asking
    admitted = limits.admit(budget_ask(key_id, "big"))
    item = bill(key_id, "big", cost="0.3").item()
    assert ledger.write_item(item, admitted.reservation, watch=Decimal("0.3")) == REACHED
    # AND writing it again is already present (whether it reached is the caller's to check)
    assert ledger.write_item(item, admitted.reservation, watch=Decimal(5)) == ALREADY_PRESENT
    assert counters(limits, key_id)["spent"] == Decimal("0.95")


def test_a_watched_write_whose_settle_also_fails_reshapes_and_bills_exactly(
    limits: LimitsStore, ledger: Ledger, key_id: str
) -> None:
    """The watch, the hold and the window conditions all fail on one write: it is sent again
    without the watch, then reshaped as before, and bills once."""
    reservation = hold_gone_and_window_moved(limits, key_id)
    assert ledger.write_item(bill(key_id, "before", cost="0.1").item()) == WRITTEN
    item = bill(key_id, "gone", tokens=10, cost="0.2").item()

    assert ledger.write_item(item, reservation, watch=Decimal("0.25")) == REACHED

    state = limits.item(key_id, MONTH)
    assert (state["committed_usd"], state["spent_usd"]) == (Decimal("0.3"), Decimal("0.3"))
    assert state["window_tokens"] == 7, "the settle did not touch the newer window"
