"""Budget alerts: one event when a key's month spend first reaches each of its thresholds.

Exactly once per key, month and threshold, across any number of Lambda instances, concurrent
requests, ledger retries and `usage replay`, by DynamoDB's conditional writes rather than by any
process's memory (docs/decisions/0010-budget-alerts.md):

1. The ledger's write itself tells whether it made the key's month spend reach the lowest
   threshold this process does not know announced: its update is conditional on the spend
   staying below it (`Ledger.write_item(watch=…)`). Only then (or when the write found its item
   written before: a retried transaction that had landed, or a replayed item) read the key's
   month item, strongly consistent: `spent_usd` now includes this request, and the marks say
   which thresholds were announced (`store/alerts.py`).
2. For each threshold the spend has reached and nobody announced: claim it with a conditional
   write (`spent_usd >= amount`, no mark yet). One process wins; the others see the mark.
3. The winner sends the event (EventBridge, or one JSON log line locally), then marks it sent.
   A sender that dies or fails between claim and send leaves a pending mark, which a later check
   (the next request of the key, or `usage replay` of the `budget_alert_failed` line) takes over
   once the lease has passed, and sends.

This runs after the client has its last byte, like the ledger write. The common write reaches
no threshold and costs nothing more; a write that reaches one costs the cancelled transaction,
its retry, the read and the claim. Why no crossing is missed: the write W that takes the spend
from under a threshold's amount A to A or more watched an amount no higher than A (a threshold
is remembered as sent only once a read showed it sent, and nobody can send it before the spend
reached A), so W's condition "spend before + cost < watched" was false and W checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from mantle_gateway.observability import logger, metric
from mantle_gateway.store.ledger import ALREADY_PRESENT, FAILED, REACHED

if TYPE_CHECKING:
    from mantle_gateway.store.alerts import AlertState
    from mantle_gateway.store.keys import KeyRecord
    from mantle_gateway.store.ledger import Ledger
    from mantle_gateway.store.limits import Reservation
    from mantle_gateway.usage import UsageRecord

SOURCE = "mantle-gateway"
DETAIL_TYPE = "Budget Threshold Reached"
REACHED_MESSAGE = "budget_threshold_reached"
"""The log line of every event sent (locally, the event itself)."""
FAILED_MESSAGE = "budget_alert_failed"
"""A check or send that failed: `usage replay` finds these lines and checks their key again."""
LEASE_SECONDS = 60
"""How long a claimed threshold waits for its sender before another process takes it over;
far longer than a send can take (PutEvents is bounded by a 5 s timeout)."""


class AlertStore(Protocol):
    def state(self, key_id: str, month: str, thresholds: Iterable[int]) -> AlertState: ...

    def claim(self, key_id: str, month: str, pct: int, amount: Decimal, now: float) -> bool: ...

    def take_over(self, key_id: str, month: str, pct: int, seen: Decimal, now: float) -> bool: ...

    def mark_sent(self, key_id: str, month: str, pct: int, now: float) -> None: ...


class EventSink(Protocol):
    def put(self, source: str, detail_type: str, detail: Mapping[str, Any]) -> None: ...


class BudgetAlerts:
    def __init__(
        self,
        *,
        store: AlertStore,
        keys: Callable[[str], KeyRecord | None],
        sink: EventSink | None,
        thresholds: tuple[int, ...],
        stage: str,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        """`keys` finds a key by id (the request path's cache; the CLI reads the table); `sink`
        None: the log line is the event (`serve`); `thresholds`: the stage's default."""
        self._store = store
        self._keys = keys
        self._sink = sink
        self._default = thresholds
        self._stage = stage
        self._clock = clock
        self._lease = Decimal(lease_seconds)
        self._done: dict[tuple[str, str], frozenset[int]] = {}
        """(key id, month) → thresholds known sent: monotonic within a month, so never stale."""

    def after_spend(self, key_id: str, month: str) -> int:
        """Announce the thresholds the key's month spend has reached and nobody announced;
        returns how many this call sent. Never raises: the answer is already sent."""
        try:
            return self._check(key_id, month)
        except Exception as exc:
            self._failed(key_id, month, None, exc)
            return 0

    def watch(self, key_id: str, month: str) -> Decimal | None:
        """The spend at which the key's month needs a check: the amount of its lowest threshold
        not known sent; None when it has nothing left to announce. Never raises: 0 (check after
        every write) when the key cannot be judged."""
        try:
            alerted = self._alerted(self._keys(key_id), month)
        except Exception:
            return Decimal(0)
        if alerted is None:
            return None
        budget, _, lowest = alerted
        return budget * lowest / 100

    def _alerted(
        self, key: KeyRecord | None, month: str
    ) -> tuple[Decimal, tuple[int, ...], int] | None:
        """The key's budget, its thresholds, and the lowest of them not known sent this month;
        None when the key has no budget, no thresholds, or all of them are known sent."""
        budget = key.monthly_budget_usd if key is not None else None
        if key is None or budget is None or budget <= 0:
            return None
        thresholds = key.alert_at if key.alert_at is not None else self._default
        unsent = set(thresholds) - self._done.get((key.key_id, month), frozenset())
        return (budget, thresholds, min(unsent)) if unsent else None

    def _check(self, key_id: str, month: str) -> int:
        key = self._keys(key_id)
        alerted = self._alerted(key, month)
        if key is None or alerted is None:
            return 0
        budget, thresholds, _ = alerted
        state = self._store.state(key_id, month, thresholds)
        sent = set(state.sent)
        for pct in sorted(set(thresholds) - sent):
            if state.spent_usd < budget * pct / 100:
                break  # ascending: no higher threshold is reached either
            if self._claim(key, month, pct, budget, state):
                sent.add(pct)
        self._remember(key_id, month, frozenset(sent & set(thresholds)))
        return len(sent) - len(state.sent)

    def _claim(
        self, key: KeyRecord, month: str, pct: int, budget: Decimal, state: AlertState
    ) -> bool:
        """Claim (or take over a stale claim of) one threshold and send it; True when sent."""
        now = self._clock()
        seen = state.pending.get(pct)
        if seen is None:
            won = self._store.claim(key.key_id, month, pct, budget * pct / 100, now)
        elif Decimal(repr(now)) - seen >= self._lease:
            won = self._store.take_over(key.key_id, month, pct, seen, now)
        else:
            won = False  # another process is sending it right now
        if not won:
            return False
        detail = {
            "key_id": key.key_id,
            "key_name": key.name,
            "month": month,
            "threshold_pct": pct,
            "spent_usd": _usd(state.spent_usd),
            "budget_usd": _usd(budget),
            "stage": self._stage,
        }
        try:
            if self._sink is not None:
                self._sink.put(SOURCE, DETAIL_TYPE, detail)
        except Exception as exc:
            self._failed(key.key_id, month, pct, exc)
            return False
        logger.info(
            REACHED_MESSAGE,
            extra={
                "source": SOURCE,
                "detail_type": DETAIL_TYPE,
                "detail": detail,
                "sent_to": "log" if self._sink is None else "eventbridge",
            },
        )
        try:
            self._store.mark_sent(key.key_id, month, pct, self._clock())
        except Exception as exc:
            # Sent but still marked pending: once the lease passes, a later check would send it
            # again. Said loudly so an operator can mark it (docs/decisions/0010).
            logger.error(
                "budget_alert_mark_failed",
                extra={
                    "key_id": key.key_id,
                    "month": month,
                    "threshold_pct": pct,
                    "error": str(exc),
                },
            )
            metric("BudgetAlertFailures")
        return True

    def _remember(self, key_id: str, month: str, sent: frozenset[int]) -> None:
        if len(self._done) > 10_000:
            self._done.clear()
        self._done[(key_id, month)] = sent

    def _failed(self, key_id: str, month: str, pct: int | None, exc: Exception) -> None:
        logger.error(
            FAILED_MESSAGE,
            extra={
                "key_id": key_id,
                "month": month,
                "threshold_pct": pct,
                "error": f"{type(exc).__name__}: {exc}",
            },
        )
        metric("BudgetAlertFailures")


def _usd(value: Decimal) -> str:
    """Exact, without DynamoDB's trailing zeros or an exponent: "12.5", "40"."""
    return format(value.normalize(), "f")


class AlertingLedger:
    """The ledger, followed by the budget check for each usage item whose write reached a
    threshold's amount (or found the item written before: a retried transaction that had
    landed may have reached one), so the pipeline and the meter stay as they are."""

    def __init__(self, ledger: Ledger, alerts: BudgetAlerts) -> None:
        self._ledger = ledger
        self._alerts = alerts

    def log_unwritten(self, record: UsageRecord, *args: Any, **kwargs: Any) -> None:
        """What a background writer gives up on is logged by the ledger, for `usage replay`
        (which checks the thresholds again when it writes it)."""
        self._ledger.log_unwritten(record, *args, **kwargs)

    def record(self, record: UsageRecord, reservation: Reservation | None = None) -> bool:
        watch = self._alerts.watch(record.key_id, record.month)
        outcome = self._ledger.write_item(record.item(), reservation, watch=watch)
        if watch is not None and outcome in (REACHED, ALREADY_PRESENT):
            self._alerts.after_spend(record.key_id, record.month)
        return outcome != FAILED
