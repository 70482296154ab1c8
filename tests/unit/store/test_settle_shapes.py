"""The shapes of a settle: what the write to the key's month item expects to find (the hold, the
reservation's window) and what it does when that is no longer so. Each step is weaker than the
last and the last is unconditional, so a settle always lands; a replayed log line carries the
reservation it must settle."""

from __future__ import annotations

from decimal import Decimal

from mantle_gateway.store.ledger import reservation_from_log, reservation_log
from mantle_gateway.store.limits import Reservation, Settle, settle_update

FULL = Reservation("k", "2026-11", "req-1", Decimal("0.3"), 90, 202611241200)


def test_the_first_shape_expects_what_was_reserved() -> None:
    assert Settle.first(FULL) == Settle(held=True, window=True)
    assert Settle.first(Reservation("k", "2026-11", None, Decimal(0), 90, 1)) == Settle(False, True)
    assert Settle.first(None) == Settle(False, False)
    update = settle_update(
        "t", "k", "2026-11", FULL, Settle.first(FULL), cost=Decimal("0.1"), tokens=30
    )
    assert update is not None
    assert update["ConditionExpression"] == "attribute_exists(#hold) AND #w = :rw"
    assert update["ExpressionAttributeNames"] == {"#hold": "hold#req-1", "#w": "window"}
    values = update["ExpressionAttributeValues"]
    assert values[":settle"] == {"N": "-0.2"}, "cost minus reserved"
    assert values[":tokens"] == {"N": "-60"}, "real minus reserved tokens"
    assert update["UpdateExpression"].endswith("REMOVE #hold")


def test_a_failed_condition_is_read_from_the_item_found() -> None:
    first = Settle.first(FULL)
    moved = {"window": 202611241201, "hold#req-1": {"usd": 1, "expires": 2}}
    assert first.after(FULL, moved) == Settle(held=True, window=False)
    swept = {"window": 202611241200}
    assert first.after(FULL, swept) == Settle(held=False, window=True)
    assert first.after(FULL, {}) == Settle(held=False, window=False)


def test_without_the_item_the_window_goes_first_then_the_hold_then_nothing_is_left() -> None:
    shapes = [Settle.first(FULL)]
    while len(shapes) < 5:
        shapes.append(shapes[-1].after(FULL, None))
    assert (
        shapes
        == [Settle(True, True), Settle(True, False), Settle(False, False)]
        + [Settle(False, False)] * 2
    )
    last = settle_update("t", "k", "2026-11", FULL, shapes[-1], cost=Decimal("0.1"), tokens=30)
    assert last is not None and "ConditionExpression" not in last
    assert last["ExpressionAttributeValues"][":settle"] == {"N": "0.1"}, "the full cost"


def test_a_release_without_a_hold_or_window_writes_nothing() -> None:
    assert settle_update("t", "k", "m", FULL, Settle(False, False), cost=None) is None
    release = settle_update("t", "k", "m", FULL, Settle(True, False), cost=None)
    assert release is not None
    assert release["UpdateExpression"] == "ADD committed_usd :settle REMOVE #hold"
    assert release["ExpressionAttributeValues"][":settle"] == {"N": "-0.3"}


def test_a_log_line_carries_the_reservation_and_old_lines_still_settle() -> None:
    item = {"key_id": "k", "month": "2026-11"}
    line = {"reserved_usd": "0.3", "reservation": reservation_log(FULL)}
    assert reservation_from_log(item, line) == FULL
    legacy = reservation_from_log(item, {"reserved_usd": "0.3"})
    assert legacy == Reservation("k", "2026-11", None, Decimal("0.3"))
    assert Settle.first(legacy).after(legacy, {}) == Settle(held=True, window=False), (
        "a reservation from before holds is subtracted without a condition"
    )
    assert reservation_from_log(item, {}) is None
