"""Budget alert marks on the key's month item (`spend#<key>#<YYYY-MM>`, limits table).

The month item already holds `spent_usd`, which the ledger adds to in the same transaction as
each usage item, so the marks that say which thresholds were announced sit beside the number
that crossed them, and a new month starts with none. Two numbers per threshold <pct>, epoch
seconds (plain numbers, like everything else on the item, so every reader of it keeps working):

- `alert<pct>_claimed_at`: a process claimed the threshold and is sending its event. The claim
  is a conditional UpdateItem (`spent_usd >= amount` and no claim yet), and DynamoDB serializes
  conditional writes to one item, so of any number of processes that see the crossing at once
  exactly one wins.
- `alert<pct>_sent_at`: the event was accepted. Never removed within the month.

A claim without `sent_at` older than the lease is taken over (conditional on the exact claim
seen), so an event whose sender died between claim and send is still sent, by one process
(docs/decisions/0010-budget-alerts.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mantle_gateway import schema
from mantle_gateway.store.dynamo import ConditionFailed, Dynamo, number
from mantle_gateway.store.limits import spend_pk


def claimed_attr(pct: int) -> str:
    return f"alert{pct}_claimed_at"


def sent_attr(pct: int) -> str:
    return f"alert{pct}_sent_at"


@dataclass(frozen=True, slots=True)
class AlertState:
    """What the month item says, read strongly consistent after the spend was written."""

    spent_usd: Decimal = Decimal(0)
    sent: frozenset[int] = frozenset()
    pending: Mapping[int, Decimal] = field(default_factory=dict)
    """Threshold → when it was claimed (epoch seconds), for claims not marked sent."""


class AlertMarks:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def state(self, key_id: str, month: str, thresholds: Iterable[int]) -> AlertState:
        pcts = sorted(set(thresholds))
        names = {f"#c{p}": claimed_attr(p) for p in pcts} | {f"#s{p}": sent_attr(p) for p in pcts}
        answer = self._dynamo.call(
            lambda c: c.get_item(
                TableName=self._table,
                Key=self._key(key_id, month),
                ConsistentRead=True,
                ProjectionExpression=", ".join(["spent_usd", *names]),
                ExpressionAttributeNames=names,
            )
        )
        item: Mapping[str, Any] = answer.get("Item", {})
        sent = frozenset(p for p in pcts if sent_attr(p) in item)
        return AlertState(
            spent_usd=Decimal(item.get("spent_usd", {}).get("N", "0")),
            sent=sent,
            pending={
                p: Decimal(item[claimed_attr(p)]["N"])
                for p in pcts
                if p not in sent and claimed_attr(p) in item
            },
        )

    def claim(self, key_id: str, month: str, pct: int, amount: Decimal, now: float) -> bool:
        """Claim <pct> if the spend has reached `amount` and nobody claimed it this month."""
        return self._set(
            key_id,
            month,
            claimed_attr(pct),
            "spent_usd >= :amount AND attribute_not_exists(#set)",
            {":amount": {"N": number(amount)}},
            now,
        )

    def take_over(self, key_id: str, month: str, pct: int, seen: Decimal, now: float) -> bool:
        """Renew a stale claim, if it is still exactly the one seen and was not sent since."""
        return self._set(
            key_id,
            month,
            claimed_attr(pct),
            "#set = :seen AND attribute_not_exists(#sent)",
            {":seen": {"N": number(seen)}},
            now,
            {"#sent": sent_attr(pct)},
        )

    def mark_sent(self, key_id: str, month: str, pct: int, now: float) -> None:
        self._set(key_id, month, sent_attr(pct), None, {}, now)

    def _set(
        self,
        key_id: str,
        month: str,
        attribute: str,
        condition: str | None,
        values: dict[str, Any],
        now: float,
        names: dict[str, str] | None = None,
    ) -> bool:
        """SET `attribute` = now when `condition` holds (or always); False when it does not."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(key_id, month),
            "UpdateExpression": "SET #set = :now",
            "ExpressionAttributeNames": {"#set": attribute} | (names or {}),
            "ExpressionAttributeValues": values | {":now": {"N": f"{now:.3f}"}},
        }
        if condition is not None:
            request["ConditionExpression"] = condition
        try:
            self._dynamo.call(lambda c: c.update_item(**request))
        except ConditionFailed:
            return False
        return True

    def _key(self, key_id: str, month: str) -> dict[str, Any]:
        return {schema.LIMITS_PK: {"S": spend_pk(key_id, month)}}
