"""Turning what a request used into the ledger: usage records, response owners, background bills.

The pipeline calls this when an answer ends (the relay's `on_finish`, or the door closing a
buffered answer), so the client has its last byte before the ledger is written. A background
response (`background: true`) is answered "queued" before any token is spent: its bill waits in
the owner record, and the owner's first read that finds it finished writes it — once, because
its usage item's id is derived from the response id and the ledger's put is conditional —
whether that read is plain or streamed (`GET /responses/{id}?stream=true`). Its budget
reservation stays in the hold admission wrote, which the owner record names: the bill settles
it, or adds the full cost if the hold expired first (docs/decisions/0006).

Usage the upstream did not send, or sent with numbers no bill can carry (NaN, negative, over
`MAX_TOKENS_PER_COUNT`, …), is estimated from what was sent and seen and flagged `estimated`;
bad numbers also log `invalid_upstream_usage` and emit the `InvalidUpstreamUsage` metric.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from mantle_gateway.core.call import Call
from mantle_gateway.core.pricing import PriceTable
from mantle_gateway.observability import logger, metric
from mantle_gateway.store.dynamo import StoreError
from mantle_gateway.store.limits import Reservation
from mantle_gateway.store.responses import PendingBill, ResponseOwner
from mantle_gateway.stream.relay import Observation
from mantle_gateway.usage import (
    InvalidUsage,
    TokenCounts,
    UsageRecord,
)

_ZERO = Decimal(0)
_WAITING = frozenset({"queued", "in_progress"})
_FINISHED = frozenset({"completed", "incomplete", "failed", "cancelled"})


class LedgerWriter(Protocol):
    def record(self, record: UsageRecord, reservation: Reservation | None = ...) -> bool: ...


class Owners(Protocol):
    def put(self, response_id: str, owner: ResponseOwner) -> None: ...

    def get(self, response_id: str) -> ResponseOwner | None: ...

    def settle(self, response_id: str) -> None: ...


def awaits_background_work(answer: Mapping[str, Any]) -> bool:
    return answer.get("background") is True and answer.get("status") in _WAITING


def observe(
    answer: Mapping[str, Any],
    size: int,
    read: Callable[[Mapping[str, Any]], TokenCounts | None],
) -> Observation:
    """What a whole (not streamed) answer of `size` bytes used: its usage as `read` finds it
    (the API family's reading), else an estimate of its output (bytes / 4, as the input is
    estimated), and its status."""
    observed = Observation(ended=True, events=size // 4)
    try:
        observed.tokens = read(answer)
    except InvalidUsage:
        observed.usage_invalid = True
    status = answer.get("status")
    observed.status = status if isinstance(status, str) else None
    return observed


class Meter:
    def __init__(
        self,
        *,
        ledger: LedgerWriter,
        owners: Owners,
        prices: PriceTable,
        clock: Callable[[], float],
        stamp: Callable[[UsageRecord, Call], UsageRecord] = lambda record, call: record,
    ) -> None:
        self._stamp = stamp
        """Adds what else the request cost (the guardrail's text units: core/guardrails.py)."""
        self._ledger = ledger
        self._owners = owners
        self._prices = prices
        self._clock = clock

    def remember_owner(
        self, call: Call, response_id: str, pending: PendingBill | None = None
    ) -> bool:
        """Record which key owns a stored response (not for `store: false`, nothing is kept)."""
        if call.parsed is None or call.parsed.data.get("store") is False:
            return False
        try:
            self._owners.put(response_id, ResponseOwner(call.key.key_id, call.prefix, pending))
        except StoreError:
            logger.error("response_owner_write_failed", extra={"response_id": response_id})
            return False
        return True

    def defer(self, call: Call, response_id: str) -> bool:
        """Keep a queued background response's bill (and the hold of its budget reservation) for
        later. Its tokens stay reserved at their worst case in the minute it was admitted."""
        assert call.parsed is not None
        reservation = call.reservation
        pending = PendingBill(
            call.parsed.model,
            call.started,
            call.request.door,
            reservation.usd if reservation is not None else _ZERO,
            reservation.hold if reservation is not None else None,
            input_estimate=_input_estimate(call.request.body),
        )
        return self.remember_owner(call, response_id, pending)

    def record(self, call: Call, observed: Observation, *, stream: bool) -> None:
        """The usage of a request whose answer just ended (never raises: the answer is sent)."""
        assert call.parsed is not None
        tokens, estimated = _measured(
            observed, _input_estimate(call.request.body), call.request_id, call.key.key_id
        )
        self._write(
            self._stamp(self._call_usage(call, tokens, observed, stream, estimated), call),
            call.reservation,
        )

    def record_blocked(self, call: Call) -> None:
        """A request its guardrail refused before the upstream: no model tokens, status
        `guardrail_blocked`, the guardrail's cost settling the reservation."""
        observed = Observation(ended=True)
        record = self._call_usage(
            call, TokenCounts(), observed, call.parsed is not None and call.parsed.stream, False
        )
        self._write(
            replace(self._stamp(record, call), status="guardrail_blocked"), call.reservation
        )

    def _call_usage(
        self, call: Call, tokens: TokenCounts, observed: Observation, stream: bool, estimated: bool
    ) -> UsageRecord:
        assert call.parsed is not None
        return self._usage(
            request_id=call.request_id,
            key_id=call.key.key_id,
            model=call.parsed.model,
            started=call.started,
            door=call.request.door,
            tokens=tokens,
            outcome=observed.outcome,
            estimated=estimated,
            stream=stream,
            surface=call.route.surface,
            response_id=observed.response_id,
            project=call.project,
        )

    def bill_background(self, call: Call, observed: Observation) -> None:
        """Bill a background response once, from its owner's read (plain or streamed) that
        found it finished; any other read bills nothing."""
        owner, response_id = call.owner, call.route.response_id
        if owner is None or owner.pending is None or response_id is None:
            return
        if observed.status not in _FINISHED:
            return
        pending = owner.pending
        tokens, estimated = _measured(
            observed, pending.input_estimate, call.request_id, call.key.key_id
        )
        record = self._usage(
            request_id="bg_" + response_id,
            key_id=call.key.key_id,
            model=pending.model,
            started=pending.started,
            door=pending.door,
            tokens=tokens,
            outcome=None if observed.status == "completed" else observed.status,
            estimated=estimated,
            stream=False,
            surface="responses",
            response_id=response_id,
            project=call.project,
        )
        reservation = Reservation(call.key.key_id, record.month, pending.hold, pending.reserved)
        if self._write(record, reservation):
            try:
                self._owners.settle(response_id)
            except StoreError:
                logger.warning("response_settle_failed", extra={"response_id": response_id})

    def _usage(
        self,
        *,
        request_id: str,
        key_id: str,
        model: str,
        started: float,
        door: str,
        tokens: TokenCounts,
        outcome: str | None,
        estimated: bool,
        stream: bool,
        surface: str | None,
        response_id: str | None,
        project: str | None,
    ) -> UsageRecord:
        cost = self._prices.cost(model, tokens)
        if cost is None:
            logger.warning("unknown_model_price", extra={"model": model})
            metric("UnknownModelPrice")
        return UsageRecord(
            request_id=request_id,
            timestamp=datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            key_id=key_id,
            model=model,
            tokens=tokens,
            cost_usd=cost if cost is not None else _ZERO,
            status="ok" if outcome is None else "incomplete",
            latency_ms=int((self._clock() - started) * 1000),
            door=door,
            stream=stream,
            api_surface=surface,
            outcome=outcome,
            estimated=estimated,
            response_id=response_id,
            project=project,
        )

    def _write(self, record: UsageRecord, reservation: Reservation | None) -> bool:
        try:
            return self._ledger.record(record, reservation)
        except Exception:
            logger.exception("usage_record_failed", extra={"request_id": record.request_id})
            return False


def _input_estimate(body: bytes) -> int:
    return max(1, len(body) // 4)


def _measured(
    observed: Observation, input_estimate: int, request_id: str, key_id: str
) -> tuple[TokenCounts, bool]:
    """The tokens to bill and whether they are estimated. Usage the upstream never sent (cut
    short) or sent with bad numbers: what was sent (body bytes / 4) and seen (events); usage
    whose output count never came (a Messages stream cut short): at least what was seen."""
    if observed.usage_invalid:
        logger.warning("invalid_upstream_usage", extra={"request_id": request_id, "key_id": key_id})
        metric("InvalidUpstreamUsage")
    tokens = observed.tokens
    if tokens is None:
        return TokenCounts(input=input_estimate, output=observed.events), True
    if observed.estimated:
        # The input was reported, the final output count never came: count what was seen.
        return replace(tokens, output=max(tokens.output, observed.events)), True
    return tokens, False
