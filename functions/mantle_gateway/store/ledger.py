"""Usage item and spend in one DynamoDB transaction: the ledger finance can trust.

One TransactWriteItems puts the usage item (only if it does not exist: writing the same request
twice is a no-op, which makes replay idempotent) and, in the key's month item, adds its cost to
the spend counter and settles what admission reserved: the hold is removed and cost minus reserved
added to `committed_usd` (the full cost if the hold expired and was swept meanwhile), and the
real tokens replace the worst case in the rate window the reservation went into (not in a later
one: that window is gone). So for every key and month the sum of the usage items equals the
spend counter exactly. Which of those the month item still holds is a condition of the write;
a transaction cancelled by that condition (told apart from "already written" by its per-action
reasons) is sent again in the shape the item it found calls for.

A caller may name an amount of spend to `watch` (budget alerts: the lowest threshold not yet
announced): the month item's update then also holds on the condition that the spend stays below
it, so the one transaction tells whether this write reached it (`REACHED`) and the common write,
which reaches nothing, needs no read afterwards. A write whose update is cancelled by that
condition is sent again without it (the spend is written whatever it reaches).

A write refused by DynamoDB is retried with backoff; if it still fails the whole item (and the
reservation to settle) goes to one structured log line (`usage_write_failed`) that
`mantle-gateway usage replay` can write back later. Usage is never silently lost.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from mantle_gateway import schema
from mantle_gateway.observability import logger, metric
from mantle_gateway.store.dynamo import ConditionFailed, Dynamo, StoreError, number, to_item
from mantle_gateway.store.limits import Reservation, Settle, settle_update
from mantle_gateway.usage import UsageRecord

FAILED_WRITE_MESSAGE = "usage_write_failed"
WRITTEN, ALREADY_PRESENT, FAILED = "written", "already_present", "failed"
REACHED = "reached"
"""Written now, and the spend this write added to reached the watched amount (or may have: a
cancellation whose item the ledger could not see counts as reached)."""
_ZERO = Decimal(0)


class Ledger:
    def __init__(
        self,
        dynamo: Dynamo,
        *,
        usage_table: str,
        limits_table: str,
        attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._dynamo = dynamo
        self._usage_table = usage_table
        self._limits_table = limits_table
        self._attempts = attempts
        self._sleep = sleep

    def record(self, record: UsageRecord, reservation: Reservation | None = None) -> bool:
        """Write the item and the spend; True when written now or before, False when logged."""
        return self.write_item(record.item(), reservation) != FAILED

    def log_unwritten(
        self, record: UsageRecord, reservation: Reservation | None = None, *, error: str
    ) -> None:
        """Keep a record that will not be written now as `record()` keeps one DynamoDB refused:
        one line `usage replay` writes back (the local door's writer, at shutdown)."""
        _log_failed_write(record.item(), reservation, error)

    def write_item(
        self,
        item: Mapping[str, Any],
        reservation: Reservation | None = None,
        *,
        watch: Decimal | None = None,
    ) -> str:
        """WRITTEN, REACHED (written, and the month's spend reached `watch`), ALREADY_PRESENT
        (same request written before: whether it reached `watch` is not known) or FAILED
        (logged for replay). The item's tokens settle the reservation's tokens, its cost the
        reserved dollars."""
        settle = Settle.first(reservation)
        below = None if watch is None else watch - Decimal(str(item["cost_usd"]))
        reached = below is not None and below <= 0  # certain: nothing to ask DynamoDB
        delay = 0.05
        attempt = 1
        while True:
            actions = self._actions(item, reservation, settle, None if reached else below)
            try:
                self._transact(actions)
                return REACHED if reached else WRITTEN
            except ConditionFailed as exc:
                if exc.failed[:1] != (False,) or len(exc.failed) < 2:
                    return ALREADY_PRESENT  # the put's condition: this request is written
                found = exc.items[1]
                if below is not None and not reached and _at_least(found, below):
                    reached = True  # the settle's own condition, if it failed too, shows next
                    continue
                weaker = settle.after(reservation, found)
                if weaker == settle:  # only an unconditional update is never weaker: it cannot fail
                    raise StoreError("the spend update kept failing its condition") from exc
                settle = weaker
            except StoreError as exc:
                if attempt == self._attempts:
                    _log_failed_write(item, reservation, str(exc))
                    return FAILED
                attempt += 1
                self._sleep(delay + random.uniform(0, delay))
                delay *= 2

    def _transact(self, actions: list[dict[str, Any]]) -> None:
        self._dynamo.call(lambda c: c.transact_write_items(TransactItems=actions))

    def _actions(
        self,
        item: Mapping[str, Any],
        reservation: Reservation | None,
        settle: Settle,
        below: Decimal | None,
    ) -> list[dict[str, Any]]:
        update = settle_update(
            self._limits_table,
            str(item["key_id"]),
            str(item["month"]),
            reservation,
            settle,
            cost=Decimal(str(item["cost_usd"])),
            tokens=int(item.get("total_tokens", 0)),
        )
        assert update is not None  # a bill always writes the spend
        if below is not None:
            update = _staying_below(update, below)
        return [
            {
                "Put": {
                    "TableName": self._usage_table,
                    "Item": to_item(item),
                    "ConditionExpression": "attribute_not_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": schema.USAGE_PK},
                }
            },
            {"Update": update},
        ]


def _staying_below(update: dict[str, Any], below: Decimal) -> dict[str, Any]:
    """The month item's update, also conditional on its spend before this write being under
    `below` (the watched amount minus this write's cost), with the item returned if not."""
    stays = "(attribute_not_exists(spent_usd) OR spent_usd < :below)"
    condition = update.get("ConditionExpression")
    return update | {
        "ConditionExpression": stays if condition is None else f"{condition} AND {stays}",
        "ExpressionAttributeValues": update.get("ExpressionAttributeValues", {})
        | {":below": {"N": number(below)}},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def _at_least(found: Mapping[str, Any] | None, below: Decimal) -> bool:
    """Whether the month item as a cancelled write found it was already at `below` (unknown
    counts as yes: the caller then checks, which is always safe)."""
    if found is None:
        return True
    return Decimal(str(found.get("spent_usd", 0))) >= below


def reservation_log(reservation: Reservation | None) -> dict[str, Any] | None:
    """The reservation in a `usage_write_failed` line, so a replay settles it like the write
    would have (see `reservation_from_log`)."""
    if reservation is None:
        return None
    return {
        "hold": reservation.hold,
        "usd": str(reservation.usd),
        "tokens": reservation.tokens,
        "window": reservation.window,
    }


def reservation_from_log(item: Mapping[str, Any], line: Mapping[str, Any]) -> Reservation | None:
    """The reservation a `usage_write_failed` line carries; lines written before holds existed
    carry only `reserved_usd`, a reservation settled without a hold."""
    key_id, month = str(item["key_id"]), str(item["month"])
    logged = line.get("reservation")
    if isinstance(logged, dict):
        window = logged.get("window")
        hold = logged.get("hold")
        return Reservation(
            key_id,
            month,
            str(hold) if hold is not None else None,
            Decimal(str(logged.get("usd", "0"))),
            int(logged.get("tokens") or 0),
            int(window) if window is not None else None,
        )
    reserved = Decimal(str(line.get("reserved_usd", "0")))
    return Reservation(key_id, month, None, reserved) if reserved else None


def _log_failed_write(item: Mapping[str, Any], reservation: Reservation | None, error: str) -> None:
    """The one line that keeps an unwritten usage item: `usage replay` writes it back and
    settles its reservation as the write would have."""
    logger.error(
        FAILED_WRITE_MESSAGE,
        extra={
            "usage_item": json_safe(item),
            "reserved_usd": str(reservation.usd if reservation else _ZERO),
            "reservation": reservation_log(reservation),
            "error": error,
        },
    )
    metric("UsageWriteFailures")


def json_safe(item: Mapping[str, Any]) -> dict[str, Any]:
    """Decimals as strings so the logged item round-trips exactly (json floats would not)."""
    safe: dict[str, Any] = json.loads(json.dumps(dict(item), default=str))
    return safe
