"""Counters shared by every Lambda instance: one item per key and UTC month.

The item `spend#<key>#<YYYY-MM>` holds everything admission and the ledger count, so that a
request is admitted with ONE conditional UpdateItem (rate limit and budget together):
- `window`, `window_requests`, `window_tokens`: the key's current UTC-minute rate window
  (`window` is YYYYmmddHHMM as a number). The first request of a new minute resets the counts
  in the same write that counts it, so nothing accumulates and nothing needs a TTL;
- `committed_usd`: settled cost plus the worst-case cost reserved by requests still in flight;
- `spent_usd` and `requests`: settled cost and count, added by the ledger in the same
  transaction as each usage item, so `spent_usd` always equals the sum of the month's items.
A new month is a new item, so budgets restart at zero without any job.

Admission adds one request to the window and reserves the worst case only while every limit
holds (`window_requests < rpm`, `window_tokens < tpm`, `committed_usd < budget`). DynamoDB
serializes conditional writes to one item, so N instances racing for the last slot admit exactly
one, and the budget can be overshot by at most the one request whose reservation crossed it.
A refused request changes nothing: it takes no rate slot and reserves nothing.

Which of the two write shapes to send (count in the current window, or start a new one) is
predicted from the window this process last saw for the key; a wrong guess costs one more
round trip and is corrected from the item the failed write returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from mantle_gateway import schema
from mantle_gateway.store.dynamo import ConditionFailed, Dynamo, StoreError, from_item, number

WINDOW_SECONDS = 60
_ATTEMPTS = 3
"""Write shapes tried before giving up: a wrong guess, then the window someone else started."""

Refusal = Literal["rate", "budget"]


def spend_pk(key_id: str, month: str) -> str:
    return f"spend#{key_id}#{month}"


def window_of(now: datetime) -> int:
    """The UTC minute as a number (YYYYmmddHHMM): windows compare in time order."""
    return int(now.strftime("%Y%m%d%H%M"))


@dataclass(frozen=True, slots=True)
class RateState:
    """The key's rate window as the admission write left it (or found it, when refused)."""

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


@dataclass(frozen=True, slots=True)
class Verdict:
    refused: Refusal | None
    """None when admitted (counted, and the amount reserved); else the limit that refused."""
    rate: RateState | None
    """The window's counts, for the x-ratelimit-* headers; None when the key has no rate limit."""


@dataclass(frozen=True, slots=True)
class Ask:
    """One admission: the key's limits (None: not limited) and the amount to reserve."""

    key_id: str
    month: str
    now: datetime
    rpm: int | None = None
    tpm: int | None = None
    budget: Decimal | None = None
    amount: Decimal = Decimal(0)

    @property
    def rate_limited(self) -> bool:
        return self.rpm is not None or self.tpm is not None


class LimitsStore:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table
        self._seen: dict[str, int] = {}
        """Key id → the last window this process saw in the key's item (a guess, never a rule)."""

    def admit(self, ask: Ask) -> Verdict:
        """Count the request and reserve its amount in one conditional write, or refuse."""
        reset = WINDOW_SECONDS - ask.now.second
        if (ask.rpm is not None and ask.rpm <= 0) or (ask.tpm is not None and ask.tpm <= 0):
            return Verdict("rate", RateState(ask.rpm, ask.tpm, 0, 0, reset))
        window = window_of(ask.now)
        fresh = ask.rate_limited and self._seen.get(ask.key_id) != window
        for _ in range(_ATTEMPTS):
            request = self._write(ask, window, fresh)
            try:
                answer = self._update(request)
            except ConditionFailed as exc:
                old = _old_item(exc)
                found = old.get("window")
                moved = (found is not None and found >= window) if fresh else found != window
                if ask.rate_limited and moved:
                    # The guess was wrong: start the window, or count in the one already started.
                    if found is None or found < window:
                        fresh = True
                    else:
                        window, fresh = int(found), False
                    continue
                return self._refused(ask, old, window, reset)
            if not ask.rate_limited:
                return Verdict(None, None)
            self._seen[ask.key_id] = window
            return Verdict(None, _rate(ask, from_item(answer.get("Attributes", {})), reset))
        raise StoreError("the rate window kept moving")

    def _update(self, request: dict[str, Any]) -> Mapping[str, Any]:
        return self._dynamo.call(lambda c: c.update_item(**request))

    def _write(self, ask: Ask, window: int, fresh: bool) -> dict[str, Any]:
        """The UpdateItem request: `fresh` starts the window, else counts in the current one."""
        conditions: list[str] = []
        values: dict[str, Any] = {}
        sets: list[str] = []
        adds: list[str] = []
        if ask.rate_limited:
            values[":w"] = {"N": str(window)}
            values[":one"] = {"N": "1"}
            if fresh:
                conditions.append("(attribute_not_exists(#w) OR #w < :w)")
                sets.append("#w = :w, window_requests = :one, window_tokens = :zero")
                values[":zero"] = {"N": "0"}
            else:
                conditions.append("#w = :w")
                adds.append("window_requests :one")
                if ask.rpm is not None:
                    conditions.append("window_requests < :rpm")
                    values[":rpm"] = {"N": str(ask.rpm)}
                if ask.tpm is not None:
                    conditions.append("window_tokens < :tpm")  # set when the window started
                    values[":tpm"] = {"N": str(ask.tpm)}
        if ask.budget is not None:
            # With a budget of 0 even a missing item must refuse, hence attribute_exists there.
            conditions.append(
                "(attribute_not_exists(committed_usd) OR committed_usd < :budget)"
                if ask.budget > 0
                else "(attribute_exists(committed_usd) AND committed_usd < :budget)"
            )
            values[":budget"] = {"N": number(ask.budget)}
            values[":amount"] = {"N": number(ask.amount)}
            adds.append("committed_usd :amount")
        expression = " ".join(
            f"{verb} {', '.join(parts)}" for verb, parts in (("SET", sets), ("ADD", adds)) if parts
        )
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {schema.LIMITS_PK: {"S": spend_pk(ask.key_id, ask.month)}},
            "UpdateExpression": expression,
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW" if ask.rate_limited else "NONE",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if ask.rate_limited:
            request["ExpressionAttributeNames"] = {"#w": "window"}
        return request

    def _refused(self, ask: Ask, old: dict[str, Any], window: int, reset: int) -> Verdict:
        """Which limit refused, judged from the item as the failed write found it."""
        current = old.get("window") == window
        if current:
            self._seen[ask.key_id] = window
        rate = _rate(ask, old if current else {}, reset) if ask.rate_limited else None
        over_rate = rate is not None and (
            (rate.rpm is not None and rate.requests >= rate.rpm)
            or (rate.tpm is not None and rate.tokens >= rate.tpm)
        )
        return Verdict("rate" if over_rate else "budget", rate)

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


def _rate(ask: Ask, item: Mapping[str, Any], reset: int) -> RateState:
    return RateState(
        ask.rpm,
        ask.tpm,
        int(item.get("window_requests", 0)),
        int(item.get("window_tokens", 0)),
        reset,
    )


def _old_item(exc: ConditionFailed) -> dict[str, Any]:
    cause = exc.__cause__
    response = getattr(cause, "response", {}) if cause is not None else {}
    item = response.get("Item") if isinstance(response, dict) else None
    return from_item(item) if isinstance(item, dict) else {}
