"""Counters shared by every Lambda instance: per-minute rate windows and per-month spend.

Rate windows are one item per key and UTC minute (`rate#<key>#<YYYYmmddHHMM>`) holding
`requests` and `tokens`; admission is one conditional UpdateItem, so N instances racing for the
last slot admit exactly one. Windows carry `expires_at` (TTL) and vanish by themselves.

Spend is one item per key and UTC month (`spend#<key>#<YYYY-MM>`), so a new month starts from
zero without any job. It holds two sums:
- `spent_usd`: settled cost, added by the ledger in the same transaction as each usage item, so
  it always equals the sum of the month's usage items;
- `committed_usd`: settled cost plus the worst-case cost reserved by requests still in flight.
Admission reserves a request's worst case only while `committed_usd < budget`; settlement swaps
the reservation for the real cost. Once the committed sum reaches the budget every instance
refuses, so concurrent requests can overshoot a budget by at most the cost of the one request
that crossed it (plus any amount by which a request's real cost exceeds its reservation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from mantle_gateway import schema
from mantle_gateway.store.dynamo import ConditionFailed, Dynamo, from_item, number

WINDOW_SECONDS = 60


def rate_pk(key_id: str, now: datetime) -> str:
    return f"rate#{key_id}#{now.strftime('%Y%m%d%H%M')}"


def spend_pk(key_id: str, month: str) -> str:
    return f"spend#{key_id}#{month}"


@dataclass(frozen=True, slots=True)
class RateState:
    admitted: bool
    rpm: int | None
    tpm: int | None
    requests: int
    tokens: int
    reset_seconds: int

    def headers(self) -> list[tuple[str, str]]:
        """OpenAI's x-ratelimit-* headers, for whichever limits the key has."""
        out: list[tuple[str, str]] = []
        reset = f"{self.reset_seconds}s"
        if self.rpm is not None:
            out += [
                ("x-ratelimit-limit-requests", str(self.rpm)),
                ("x-ratelimit-remaining-requests", str(max(0, self.rpm - self.requests))),
                ("x-ratelimit-reset-requests", reset),
            ]
        if self.tpm is not None:
            out += [
                ("x-ratelimit-limit-tokens", str(self.tpm)),
                ("x-ratelimit-remaining-tokens", str(max(0, self.tpm - self.tokens))),
                ("x-ratelimit-reset-tokens", reset),
            ]
        return out


class LimitsStore:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def admit(self, key_id: str, rpm: int | None, tpm: int | None, now: datetime) -> RateState:
        """Count this request in the current window unless that would pass a limit."""
        reset = WINDOW_SECONDS - now.second
        conditions = []
        values: dict[str, Any] = {
            ":one": {"N": "1"},
            ":exp": {"N": str(int(now.timestamp()) + 2 * WINDOW_SECONDS)},
        }
        if rpm is not None:
            conditions.append("(attribute_not_exists(requests) OR requests < :rpm)")
            values[":rpm"] = {"N": str(rpm)}
        if tpm is not None:
            conditions.append("(attribute_not_exists(tokens) OR tokens < :tpm)")
            values[":tpm"] = {"N": str(tpm)}
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {schema.LIMITS_PK: {"S": rate_pk(key_id, now)}},
            "UpdateExpression": "ADD requests :one SET #exp = :exp",
            "ExpressionAttributeNames": {"#exp": schema.LIMITS_TTL_ATTR},
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if conditions:
            request["ConditionExpression"] = " AND ".join(conditions)
        try:
            answer = self._dynamo.call(lambda c: c.update_item(**request))
        except ConditionFailed as exc:
            old = _old_item(exc)
            return RateState(
                False,
                rpm,
                tpm,
                int(old.get("requests", rpm or 0)),
                int(old.get("tokens", 0)),
                reset,
            )
        new = from_item(answer.get("Attributes", {}))
        return RateState(
            True, rpm, tpm, int(new.get("requests", 1)), int(new.get("tokens", 0)), reset
        )

    def reserve(self, key_id: str, month: str, budget: Decimal, amount: Decimal) -> bool:
        """Reserve `amount` against the month unless the committed sum already reached `budget`."""
        if budget <= 0:
            return False  # nothing committed yet would otherwise pass the condition below
        try:
            self._dynamo.call(
                lambda c: c.update_item(
                    TableName=self._table,
                    Key={schema.LIMITS_PK: {"S": spend_pk(key_id, month)}},
                    UpdateExpression="ADD committed_usd :amount",
                    ConditionExpression="attribute_not_exists(committed_usd) "
                    "OR committed_usd < :budget",
                    ExpressionAttributeValues={
                        ":amount": {"N": number(amount)},
                        ":budget": {"N": number(budget)},
                    },
                )
            )
        except ConditionFailed:
            return False
        return True

    def release(self, key_id: str, month: str, amount: Decimal) -> None:
        """Give back a reservation whose request was not billed (refused upstream, failed)."""
        self._dynamo.call(
            lambda c: c.update_item(
                TableName=self._table,
                Key={schema.LIMITS_PK: {"S": spend_pk(key_id, month)}},
                UpdateExpression="ADD committed_usd :amount",
                ExpressionAttributeValues={":amount": {"N": number(-amount)}},
            )
        )

    def spend(self, key_id: str, month: str) -> dict[str, Decimal]:
        """The month's counters: spent_usd, committed_usd and requests (zero when absent)."""
        answer = self._dynamo.call(
            lambda c: c.get_item(
                TableName=self._table,
                Key={schema.LIMITS_PK: {"S": spend_pk(key_id, month)}},
                ConsistentRead=True,
            )
        )
        item = from_item(answer.get("Item", {}))
        return {
            name: Decimal(item.get(name, 0)) for name in ("spent_usd", "committed_usd", "requests")
        }


def _old_item(exc: ConditionFailed) -> dict[str, Any]:
    cause = exc.__cause__
    response = getattr(cause, "response", {}) if cause is not None else {}
    item = response.get("Item") if isinstance(response, dict) else None
    return from_item(item) if isinstance(item, dict) else {}
