"""Budget alerts: which thresholds a spend reaches, one claim each, the event, failures kept.

The store here is an in-memory stand-in with the same conditions as `store/alerts.py`'s
DynamoDB writes; the integration tests run the real one across processes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from mantle_gateway.core.alerts import DETAIL_TYPE, SOURCE, AlertingLedger, BudgetAlerts
from mantle_gateway.store.alerts import AlertState
from mantle_gateway.store.keys import KeyRecord
from mantle_gateway.store.ledger import ALREADY_PRESENT, FAILED, REACHED, WRITTEN
from mantle_gateway.usage import TokenCounts, UsageRecord

MONTH = "2026-11"


@dataclass
class MonthItem:
    spent: Decimal = Decimal(0)
    claimed: dict[int, Decimal] = field(default_factory=dict)
    sent: set[int] = field(default_factory=set)


class Marks:
    """AlertMarks' conditions over dicts, counting reads and writes."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], MonthItem] = {}
        self.reads = 0
        self.fail_mark = False

    def item(self, key_id: str, month: str = MONTH) -> MonthItem:
        return self.items.setdefault((key_id, month), MonthItem())

    def state(self, key_id: str, month: str, thresholds: Iterable[int]) -> AlertState:
        self.reads += 1
        item = self.item(key_id, month)
        pcts = set(thresholds)
        return AlertState(
            item.spent,
            frozenset(item.sent & pcts),
            {p: t for p, t in item.claimed.items() if p in pcts and p not in item.sent},
        )

    def claim(self, key_id: str, month: str, pct: int, amount: Decimal, now: float) -> bool:
        item = self.item(key_id, month)
        if item.spent < amount or pct in item.claimed:
            return False
        item.claimed[pct] = Decimal(repr(now))
        return True

    def take_over(self, key_id: str, month: str, pct: int, seen: Decimal, now: float) -> bool:
        item = self.item(key_id, month)
        if item.claimed.get(pct) != seen or pct in item.sent:
            return False
        item.claimed[pct] = Decimal(repr(now))
        return True

    def mark_sent(self, key_id: str, month: str, pct: int, now: float) -> None:
        if self.fail_mark:
            raise RuntimeError("DynamoDB unavailable")
        self.item(key_id, month).sent.add(pct)


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, Mapping[str, Any]]] = []
        self.failures = 0

    def put(self, source: str, detail_type: str, detail: Mapping[str, Any]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("EventBridge unreachable")
        self.events.append((source, detail_type, dict(detail)))

    def pcts(self) -> list[int]:
        return [int(detail["threshold_pct"]) for _, _, detail in self.events]


KEY = KeyRecord(key_id="key_a", digest="d" * 64, name="team-a", monthly_budget_usd=Decimal(10))


@pytest.fixture
def now() -> list[float]:
    return [1_780_000_000.0]


@pytest.fixture
def marks() -> Marks:
    return Marks()


@pytest.fixture
def sink() -> Sink:
    return Sink()


def alerts_for(marks: Marks, sink: Sink | None, now: list[float], *keys: KeyRecord) -> BudgetAlerts:
    known = {k.key_id: k for k in keys or (KEY,)}
    return BudgetAlerts(
        store=marks,
        keys=known.get,
        sink=sink,
        thresholds=(50, 80, 100),
        stage="prod",
        clock=lambda: now[0],
    )


def test_each_reached_threshold_is_sent_once_lowest_first(marks, sink, now) -> None:
    alerts = alerts_for(marks, sink, now)
    marks.item("key_a").spent = Decimal("8.5")

    assert alerts.after_spend("key_a", MONTH) == 2
    assert alerts.after_spend("key_a", MONTH) == 0
    marks.item("key_a").spent = Decimal("10")
    assert alerts.after_spend("key_a", MONTH) == 1

    assert sink.pcts() == [50, 80, 100]
    source, detail_type, detail = sink.events[0]
    assert (source, detail_type) == (SOURCE, DETAIL_TYPE)
    assert detail == {
        "key_id": "key_a",
        "key_name": "team-a",
        "month": MONTH,
        "threshold_pct": 50,
        "spent_usd": "8.5",
        "budget_usd": "10",
        "stage": "prod",
    }


def test_a_month_with_every_threshold_sent_costs_no_read(marks, sink, now) -> None:
    alerts = alerts_for(marks, sink, now)
    marks.item("key_a").spent = Decimal("12")
    alerts.after_spend("key_a", MONTH)
    reads = marks.reads

    for _ in range(5):
        alerts.after_spend("key_a", MONTH)

    assert marks.reads == reads
    assert sink.pcts() == [50, 80, 100]


def test_two_gateways_seeing_the_same_crossing_send_it_once(marks, sink, now) -> None:
    first, second = alerts_for(marks, sink, now), alerts_for(marks, sink, now)
    marks.item("key_a").spent = Decimal("5")

    assert first.after_spend("key_a", MONTH) + second.after_spend("key_a", MONTH) == 1
    assert sink.pcts() == [50]


def test_keys_without_budget_or_with_no_thresholds_are_never_read(marks, sink, now) -> None:
    unbudgeted = KeyRecord(key_id="key_b", digest="e" * 64, name="b")
    silent = KeyRecord(
        key_id="key_c", digest="f" * 64, name="c", monthly_budget_usd=Decimal(1), alert_at=()
    )
    alerts = alerts_for(marks, sink, now, unbudgeted, silent)
    for key_id in ("key_b", "key_c", "key_unknown"):
        marks.item(key_id).spent = Decimal(100)
        assert alerts.after_spend(key_id, MONTH) == 0

    assert marks.reads == 0
    assert sink.events == []


def test_a_keys_own_thresholds_replace_the_stages(marks, sink, now) -> None:
    own = KeyRecord(
        key_id="key_d", digest="a" * 64, name="d", monthly_budget_usd=Decimal(4), alert_at=(25,)
    )
    alerts = alerts_for(marks, sink, now, own)
    marks.item("key_d").spent = Decimal(4)

    assert alerts.after_spend("key_d", MONTH) == 1
    assert sink.pcts() == [25]


def test_a_failed_send_is_logged_and_retried_by_another_process_after_the_lease(
    marks, sink, now, caplog
) -> None:
    # GIVEN the first sender fails to reach EventBridge
    sink.failures = 1
    alerts = alerts_for(marks, sink, now)
    marks.item("key_a").spent = Decimal(5)
    with caplog.at_level(logging.ERROR):
        assert alerts.after_spend("key_a", MONTH) == 0
    failed = [r for r in caplog.records if r.getMessage() == "budget_alert_failed"]
    assert [(r.key_id, r.month, r.threshold_pct) for r in failed] == [("key_a", MONTH, 50)]  # type: ignore[attr-defined]

    # WHEN another process checks within the lease, THEN it leaves the claim to its holder
    other = alerts_for(marks, sink, now)
    now[0] += 59
    assert other.after_spend("key_a", MONTH) == 0
    # WHEN the lease has passed, THEN exactly one process takes the claim over and sends it
    now[0] += 1
    assert other.after_spend("key_a", MONTH) + alerts.after_spend("key_a", MONTH) == 1
    assert sink.pcts() == [50]


def test_a_failed_mark_after_sending_counts_as_sent_and_says_so(marks, sink, now, caplog) -> None:
    marks.fail_mark = True
    alerts = alerts_for(marks, sink, now)
    marks.item("key_a").spent = Decimal(5)

    with caplog.at_level(logging.ERROR):
        assert alerts.after_spend("key_a", MONTH) == 1

    assert sink.pcts() == [50]
    assert "budget_alert_mark_failed" in [r.getMessage() for r in caplog.records]


def test_without_a_sink_the_log_line_is_the_event(marks, now, caplog) -> None:
    alerts = alerts_for(marks, None, now)
    marks.item("key_a").spent = Decimal(5)

    with caplog.at_level(logging.INFO):
        assert alerts.after_spend("key_a", MONTH) == 1

    (line,) = [r for r in caplog.records if r.getMessage() == "budget_threshold_reached"]
    assert line.detail["threshold_pct"] == 50  # type: ignore[attr-defined]
    assert line.sent_to == "log"  # type: ignore[attr-defined]


class Ledger:
    """`store.ledger.Ledger.write_item` answering a set outcome, keeping what it was asked."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self.calls: list[tuple[Any, ...]] = []

    def write_item(self, item: Any, reservation: Any = None, *, watch: Any = None) -> str:
        self.calls.append((item, reservation, watch))
        return self.outcome


RECORD = UsageRecord(
    request_id="r1",
    timestamp="2026-12-01T00:00:00.000000Z",
    key_id="key_a",
    model="m",
    tokens=TokenCounts(1, 1),
    cost_usd=Decimal(1),
    status="ok",
    latency_ms=1,
    door="local",
    stream=False,
)


@pytest.mark.parametrize(
    ("outcome", "checked"),
    [(REACHED, True), (ALREADY_PRESENT, True), (WRITTEN, False), (FAILED, False)],
)
def test_the_ledger_is_followed_by_a_check_only_when_its_write_may_have_reached_a_threshold(
    marks, sink, now, outcome, checked
) -> None:
    marks.item("key_a", "2026-12").spent = Decimal(5)
    inner = Ledger(outcome)
    ledger = AlertingLedger(inner, alerts_for(marks, sink, now))

    assert ledger.record(RECORD, None) is (outcome != FAILED)

    # THEN the write watched the lowest threshold's amount (50% of 10 USD) …
    assert inner.calls == [(RECORD.item(), None, Decimal(5))]
    # … and the month item was read (and 50% announced) only when the write said it may
    assert marks.reads == (1 if checked else 0)
    assert sink.pcts() == ([50] if checked else [])


def test_the_watched_amount_moves_up_as_thresholds_are_announced_and_ends_with_them(
    marks, sink, now
) -> None:
    alerts = alerts_for(marks, sink, now)
    assert alerts.watch("key_a", MONTH) == Decimal(5)

    marks.item("key_a").spent = Decimal("8.5")
    assert alerts.after_spend("key_a", MONTH) == 2
    assert alerts.watch("key_a", MONTH) == Decimal(10)

    marks.item("key_a").spent = Decimal(10)
    assert alerts.after_spend("key_a", MONTH) == 1
    assert alerts.watch("key_a", MONTH) is None  # all announced: the ledger asks nothing
    assert alerts.watch("key_a", "2026-12") == Decimal(5)  # a new month re-arms them


def test_keys_without_a_budget_or_thresholds_are_not_watched(marks, sink, now) -> None:
    unbudgeted = KeyRecord(key_id="key_u", digest="u" * 64, name="u")
    silent = KeyRecord(
        key_id="key_s",
        digest="s" * 64,
        name="s",
        monthly_budget_usd=Decimal(10),
        alert_at=(),
    )
    alerts = alerts_for(marks, sink, now, unbudgeted, silent)

    assert alerts.watch("key_u", MONTH) is None
    assert alerts.watch("key_s", MONTH) is None
    assert alerts.watch("key_unknown", MONTH) is None


def test_a_key_that_cannot_be_judged_is_checked_after_every_write(marks, sink, now) -> None:
    def broken(_key_id: str) -> KeyRecord | None:
        raise RuntimeError("cache broken")

    alerts = BudgetAlerts(
        store=marks, keys=broken, sink=sink, thresholds=(50,), stage="prod", clock=lambda: now[0]
    )

    assert alerts.watch("key_a", MONTH) == Decimal(0)
