"""Counters shared by every Lambda instance: one item per key and UTC month.

The item `spend#<key>#<YYYY-MM>` holds everything admission and the ledger count, so that a
request is admitted with ONE conditional UpdateItem (rate limit, tokens and budget together):
- `window`, `window_requests`, `window_tokens`: the key's current UTC-minute rate window
  (`window` is YYYYmmddHHMM as a number). The first request of a new minute resets the counts
  in the same write that counts it, so nothing accumulates and nothing needs a TTL;
  `window_tokens` is settled tokens plus the worst case reserved by requests still in flight;
- `committed_usd`: settled cost plus the worst-case cost reserved by requests still in flight;
- `hold#<request id>` = {usd, expires}: one per budget reservation in flight, so a reservation
  whose request never settles (a crash, a timeout whose write applied late) can be found and
  released once it expires (docs/decisions/0006);
- `spent_usd` and `requests`: settled cost and count, added by the ledger in the same
  transaction as each usage item, so `spent_usd` always equals the sum of the month's items.
A new month is a new item, so budgets restart at zero without any job.

Admission adds one request to the window and reserves the worst case (tokens in the window,
dollars in `committed_usd` and its hold) only while every limit holds (`window_requests < rpm`,
`window_tokens < tpm`, `committed_usd < budget`). DynamoDB serializes conditional writes to one
item, so N instances racing for the last slot admit exactly one, and tpm and the budget can be
overshot by at most the one request whose reservation crossed them. A refused request changes
nothing: it takes no rate slot and reserves nothing.

Which of the two write shapes to send (count in the current window, or start a new one) is
predicted from the window this process last saw for the key; a wrong guess costs one more
round trip and is corrected from the item the failed write returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from mantle_gateway import schema
from mantle_gateway.store.dynamo import ConditionFailed, Dynamo, StoreError, from_item, number

WINDOW_SECONDS = 60
HOLD_PREFIX = "hold#"
_ATTEMPTS = 3
"""Write shapes tried before giving up: a wrong guess, then the window someone else started."""
_SWEEP_BATCH = 25
"""Expired holds released by one write (each is conditional; one already gone fails the batch)."""
_ZERO = Decimal(0)

Refusal = Literal["rate", "budget"]


def spend_pk(key_id: str, month: str) -> str:
    return f"spend#{key_id}#{month}"


def window_of(now: datetime) -> int:
    """The UTC minute as a number (YYYYmmddHHMM): windows compare in time order."""
    return int(now.strftime("%Y%m%d%H%M"))


def _key(table: str, key_id: str, month: str) -> dict[str, Any]:
    return {"TableName": table, "Key": {schema.LIMITS_PK: {"S": spend_pk(key_id, month)}}}


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
class Hold:
    """One budget reservation as the month item records it: `hold#<request_id>`."""

    request_id: str
    usd: Decimal
    expires: Decimal
    """Epoch seconds after which no request can still settle it: a sweep may release it."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """What one admitted request reserved, for the ledger to settle or the gateway to release."""

    key_id: str
    month: str
    hold: str | None
    """The request id naming the hold that carries `usd`; None: no hold (a record written
    before holds existed, whose `usd` is subtracted unconditionally)."""
    usd: Decimal = _ZERO
    tokens: int = 0
    """Worst-case tokens reserved in the rate window `window` (0 and None: none)."""
    window: int | None = None


@dataclass(frozen=True, slots=True)
class Settle:
    """Which parts of a reservation a settling write expects the month item still holds."""

    held: bool
    """The hold is there: remove it and take its `usd` back from `committed_usd`."""
    window: bool
    """The reservation's window is current: settle its tokens there (else it is gone)."""

    @staticmethod
    def first(reservation: Reservation | None) -> Settle:
        if reservation is None:
            return Settle(False, False)
        return Settle(
            reservation.hold is not None or reservation.usd != 0,
            reservation.window is not None and reservation.tokens != 0,
        )

    def after(self, reservation: Reservation | None, found: Mapping[str, Any] | None) -> Settle:
        """The shape to try once this one's condition failed, judged from the item as the failed
        write found it (or, not knowing, by giving up the window first, then the hold). Always
        weaker, so a settle ends in at most two more writes, the last one unconditional."""
        hold = reservation.hold if reservation is not None and self.held else None
        if reservation is None or (hold is None and not self.window):
            return self  # unconditional already
        if found is not None:
            weaker = Settle(
                self.held and (hold is None or hold_attr(hold) in found),
                self.window and found.get("window") == reservation.window,
            )
            if weaker != self:
                return weaker
        if self.window:
            return Settle(self.held, False)
        return Settle(False, False)


def hold_attr(request_id: str) -> str:
    return HOLD_PREFIX + request_id


def settle_update(
    table: str,
    key_id: str,
    month: str,
    reservation: Reservation | None,
    settle: Settle,
    *,
    cost: Decimal | None,
    tokens: int = 0,
) -> dict[str, Any] | None:
    """The UpdateItem (or transaction Update) of the key's month item that bills `cost` and
    `tokens` against the reservation, or only gives the reservation back when `cost` is None.
    Conditional on what `settle` expects to find; None when there is nothing to write."""
    adds: list[str] = []
    removes: list[str] = []
    conditions: list[str] = []
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    committed = cost if cost is not None else _ZERO
    if cost is not None:
        adds += ["spent_usd :cost", "requests :one"]
        values |= {":cost": {"N": number(cost)}, ":one": {"N": "1"}}
    if reservation is not None and settle.held:
        committed -= reservation.usd
        if reservation.hold is not None:
            names["#hold"] = hold_attr(reservation.hold)
            removes.append("#hold")
            conditions.append("attribute_exists(#hold)")
    if cost is not None or committed != 0:
        adds.append("committed_usd :settle")
        values[":settle"] = {"N": number(committed)}
    if reservation is not None and settle.window and tokens != reservation.tokens:
        names["#w"] = "window"
        adds.append("window_tokens :tokens")
        conditions.append("#w = :rw")
        values |= {
            ":tokens": {"N": str(tokens - reservation.tokens)},
            ":rw": {"N": str(reservation.window)},
        }
    if not adds and not removes:
        return None
    expression = " ".join(
        f"{verb} {', '.join(parts)}"
        for verb, parts in (("ADD", adds), ("REMOVE", removes))
        if parts
    )
    update: dict[str, Any] = _key(table, key_id, month) | {"UpdateExpression": expression}
    if values:
        update["ExpressionAttributeValues"] = values
    if names:
        update["ExpressionAttributeNames"] = names
    if conditions:
        update["ConditionExpression"] = " AND ".join(conditions)
        update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return update


@dataclass(frozen=True, slots=True)
class Verdict:
    refused: Refusal | None
    """None when admitted (counted, and the amount reserved); else the limit that refused."""
    rate: RateState | None
    """The window's counts, for the x-ratelimit-* headers; None when the key has no rate limit."""
    reservation: Reservation | None = None
    """What the admitted request reserved (None: nothing, or refused)."""
    expired: tuple[Hold, ...] = ()
    """Holds the item showed past their expiry: reservations no request will settle any more."""


@dataclass(frozen=True, slots=True)
class Ask:
    """One admission: the key's limits (None: not limited) and the amounts to reserve."""

    key_id: str
    month: str
    now: datetime
    rpm: int | None = None
    tpm: int | None = None
    budget: Decimal | None = None
    amount: Decimal = _ZERO
    tokens: int = 0
    """Worst-case tokens, reserved in the rate window when the key has a tpm limit."""
    request_id: str | None = None
    """Names the hold that records the budget reservation (None: no hold)."""
    expires: Decimal = _ZERO
    """Epoch seconds after which the hold may be released by a sweep."""

    @property
    def rate_limited(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    @property
    def holds(self) -> bool:
        return self.budget is not None and self.amount > 0 and self.request_id is not None

    def reservation(self, window: int | None) -> Reservation | None:
        """What this ask reserves once admitted into `window` (None: nothing)."""
        tokens = self.tokens if self.tpm is not None and window is not None else 0
        usd = self.amount if self.budget is not None else _ZERO
        if not tokens and not usd:
            return None
        hold = self.request_id if self.holds else None
        return Reservation(self.key_id, self.month, hold, usd, tokens, window if tokens else None)


class LimitsStore:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table
        self._seen: dict[str, int] = {}
        """Key id → the last window this process saw in the key's item (a guess, never a rule)."""

    def admit(self, ask: Ask) -> Verdict:
        """Count the request and reserve its amounts in one conditional write, or refuse."""
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
                old = exc.items[0] or {}
                if ask.holds and hold_attr(str(ask.request_id)) in old:
                    # This request's own hold is there: a retry of the write that had already
                    # applied (botocore retries a call whose answer timed out). Admitted once.
                    return self._admitted(ask, old, int(old.get("window", window)), reset)
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
            return self._admitted(ask, from_item(answer.get("Attributes", {})), window, reset)
        raise StoreError("the rate window kept moving")

    def _admitted(self, ask: Ask, new: Mapping[str, Any], window: int, reset: int) -> Verdict:
        """The verdict of an applied admission write, from the item as it left it."""
        reserved = ask.reservation(window if ask.rate_limited else None)
        if not ask.rate_limited:
            return Verdict(None, None, reserved, expired_holds(new, ask.now))
        self._seen[ask.key_id] = window
        return Verdict(None, _rate(ask, new, reset), reserved, expired_holds(new, ask.now))

    def _update(self, request: dict[str, Any]) -> Mapping[str, Any]:
        return self._dynamo.call(lambda c: c.update_item(**request))

    def _write(self, ask: Ask, window: int, fresh: bool) -> dict[str, Any]:
        """The UpdateItem request: `fresh` starts the window, else counts in the current one."""
        conditions: list[str] = []
        values: dict[str, Any] = {}
        names: dict[str, str] = {}
        sets: list[str] = []
        adds: list[str] = []
        tokens = ask.tokens if ask.tpm is not None else 0
        if ask.rate_limited:
            names["#w"] = "window"
            values[":w"] = {"N": str(window)}
            values[":one"] = {"N": "1"}
            if fresh:
                conditions.append("(attribute_not_exists(#w) OR #w < :w)")
                sets.append("#w = :w, window_requests = :one, window_tokens = :tokens")
                values[":tokens"] = {"N": str(tokens)}
            else:
                conditions.append("#w = :w")
                adds.append("window_requests :one")
                if ask.rpm is not None:
                    conditions.append("window_requests < :rpm")
                    values[":rpm"] = {"N": str(ask.rpm)}
                if ask.tpm is not None:
                    conditions.append("window_tokens < :tpm")  # set when the window started
                    values[":tpm"] = {"N": str(ask.tpm)}
                    if tokens:
                        adds.append("window_tokens :tokens")
                        values[":tokens"] = {"N": str(tokens)}
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
            if ask.holds:
                assert ask.request_id is not None
                names["#hold"] = hold_attr(ask.request_id)
                sets.append("#hold = :hold")
                # Idempotent: a retried write whose first try applied must not reserve twice.
                conditions.append("attribute_not_exists(#hold)")
                values[":hold"] = {
                    "M": {"usd": {"N": number(ask.amount)}, "expires": {"N": number(ask.expires)}}
                }
        expression = " ".join(
            f"{verb} {', '.join(parts)}" for verb, parts in (("SET", sets), ("ADD", adds)) if parts
        )
        request: dict[str, Any] = _key(self._table, ask.key_id, ask.month) | {
            "UpdateExpression": expression,
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeValues": values,
            # The new item: the window's counts for the headers, and any hold past its expiry.
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if names:
            request["ExpressionAttributeNames"] = names
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
        return Verdict("rate" if over_rate else "budget", rate, None, expired_holds(old, ask.now))

    def release(self, reservation: Reservation) -> None:
        """Give back a reservation whose request will not be billed (refused upstream, failed,
        or never known to be admitted): the hold and its dollars only if the hold is still there
        (so twice, or after a sweep, changes nothing), the tokens only to their own window."""
        settle = Settle.first(reservation)
        for _ in range(3):
            update = settle_update(
                self._table, reservation.key_id, reservation.month, reservation, settle, cost=None
            )
            if update is None:
                return
            try:
                self._update(update)
                return
            except ConditionFailed as exc:
                settle = settle.after(reservation, exc.items[0])

    def sweep(self, key_id: str, month: str, holds: Sequence[Hold]) -> None:
        """Release holds past their expiry: each one removed, and its dollars taken back from
        `committed_usd`, only if it is still there (a late settle may have taken it meanwhile)."""
        for start in range(0, len(holds), _SWEEP_BATCH):
            batch = holds[start : start + _SWEEP_BATCH]
            try:
                self._drop(key_id, month, batch)
            except ConditionFailed:
                for hold in batch if len(batch) > 1 else ():
                    try:
                        self._drop(key_id, month, (hold,))
                    except ConditionFailed:
                        continue  # settled or released meanwhile

    def _drop(self, key_id: str, month: str, holds: Sequence[Hold]) -> None:
        names = {f"#h{n}": hold_attr(hold.request_id) for n, hold in enumerate(holds)}
        total = sum((hold.usd for hold in holds), _ZERO)
        request = _key(self._table, key_id, month) | {
            "UpdateExpression": f"REMOVE {', '.join(names)} ADD committed_usd :minus",
            "ConditionExpression": " AND ".join(f"attribute_exists({n})" for n in names),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":minus": {"N": number(-total)}},
        }
        self._update(request)

    def spend(self, key_id: str, month: str) -> dict[str, Decimal]:
        """The month's counters: spent_usd, committed_usd and requests (zero when absent)."""
        item = self.item(key_id, month)
        return {
            name: Decimal(item.get(name, 0)) for name in ("spent_usd", "committed_usd", "requests")
        }

    def item(self, key_id: str, month: str) -> dict[str, Any]:
        """The key's month item as plain values (empty when absent): counters, window, holds."""
        key = _key(self._table, key_id, month)
        answer = self._dynamo.call(lambda c: c.get_item(**key, ConsistentRead=True))
        return from_item(answer.get("Item", {}))


def holds_in(item: Mapping[str, Any]) -> list[Hold]:
    """The holds a month item records (attributes `hold#<request id>`)."""
    return [
        Hold(name[len(HOLD_PREFIX) :], Decimal(value["usd"]), Decimal(value["expires"]))
        for name, value in item.items()
        if name.startswith(HOLD_PREFIX) and isinstance(value, dict)
    ]


def expired_holds(item: Mapping[str, Any], now: datetime) -> tuple[Hold, ...]:
    moment = Decimal(repr(now.timestamp()))
    return tuple(hold for hold in holds_in(item) if hold.expires < moment)


def _rate(ask: Ask, item: Mapping[str, Any], reset: int) -> RateState:
    return RateState(
        ask.rpm,
        ask.tpm,
        int(item.get("window_requests", 0)),
        int(item.get("window_tokens", 0)),
        reset,
    )
