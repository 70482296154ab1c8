"""Bedrock Guardrails enforced by the gateway (docs/decisions/0011-guardrails.md).

Mantle ignores `X-Amzn-Bedrock-Guardrail*`, so the gateway calls ApplyGuardrail itself:

- which guardrail: the key's own (`keys create|update --guardrail ID:VERSION`), else the stage's
  default (GUARDRAIL_DEFAULT), else the client's headers. The operator's guardrail cannot be
  removed or swapped: a client header naming another one is refused (400). The headers still go
  up to Mantle as sent.
- input: the client's text is checked (source INPUT) on a small thread pool while admission
  does its DynamoDB round trip, so a warm guarded request waits on the slower of the two.
  Blocked → 400 `guardrail_intervened` with the guardrail's message, nothing upstream; masked
  → the masked texts replace the originals in the body that is signed and sent.
- output (a whole JSON answer): checked (source OUTPUT) before it is returned; intervened →
  the text is replaced by the guardrail's and the family marks the answer filtered.
- failure: 503 (fail closed) unless GUARDRAIL_FAILURE_MODE=open, which lets the request through
  with a warning log and the `GuardrailFailOpen` metric.

Text units are counted on the `Call` (`GuardState`) and priced per 1,000 units (PRICES_JSON key
`bedrock.guardrail`, field `per_1k_text_units`); `stamp` adds them to the usage record.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from mantle_gateway.core import guard_text
from mantle_gateway.errors import InvalidRequestError, ServiceUnavailableError
from mantle_gateway.observability import logger, metric
from mantle_gateway.stream.guard_window import DIALECTS, GuardedStream
from mantle_gateway.upstream.guardrail import (
    GuardrailClient,
    GuardrailRef,
    GuardrailUnavailable,
    Verdict,
)

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from mantle_gateway.core.call import Call
    from mantle_gateway.settings import Settings
    from mantle_gateway.store.keys import KeyRecord
    from mantle_gateway.stream.relay import Relay
    from mantle_gateway.usage import UsageRecord

ID_HEADER = "x-amzn-bedrock-guardrailidentifier"
VERSION_HEADER = "x-amzn-bedrock-guardrailversion"
ANSWER_HEADER = "x-gateway-guardrail"
PRICE_KEY = "bedrock.guardrail"
PRICE_FIELD = "per_1k_text_units"
DEFAULT_PRICE_PER_1K_UNITS = Decimal("0.15")
"""USD per 1,000 text units: Bedrock's price for content filters and denied topics (its PII
filter costs less, word filters nothing), so the gateway never undercounts."""
_THOUSAND = Decimal(1000)
_POOL_WORKERS = 4


@dataclass(slots=True)
class GuardState:
    """What the guardrail did for one request, carried on the `Call` into metering."""

    ref: GuardrailRef
    intervened: bool = False
    blocked: bool = False
    units: int = 0
    failed_open: bool = False
    message: str = ""
    """What the guardrail says instead of blocked content (its configured blocked message)."""

    @property
    def action(self) -> str:
        return "intervened" if self.intervened else "none"

    @property
    def header(self) -> tuple[str, str]:
        return ANSWER_HEADER, f"{self.ref}; action={self.action}"

    def add(self, verdict: Verdict) -> None:
        self.units += verdict.units
        self.intervened = self.intervened or verdict.intervened
        self.blocked = self.blocked or verdict.blocked
        if verdict.blocked and not self.message:
            self.message = verdict.outputs[0]


@dataclass(frozen=True, slots=True)
class PendingInput:
    """An input check under way, and the parsed copy of the body its mask would go into."""

    future: Future[Verdict]
    data: dict[str, Any]
    slots: list[guard_text.Slot]


class Guard:
    def __init__(self, settings: Settings, client: GuardrailClient) -> None:
        self._client = client
        self._default = GuardrailRef.parse(settings.guardrail_default or "")
        self._fail_open = settings.guardrail_failure_mode == "open"
        self._window = settings.guardrail_stream_window_chars
        price = settings.price_overrides.get(PRICE_KEY, {}).get(PRICE_FIELD)
        self._price = Decimal(repr(price)) if price is not None else DEFAULT_PRICE_PER_1K_UNITS
        self._pool: ThreadPoolExecutor | None = None

    # -- which guardrail -----------------------------------------------------------------------

    def resolve(self, key: KeyRecord, headers: Mapping[str, str]) -> GuardrailRef | None:
        """The guardrail this request is held to, or None; 400 for headers that cannot hold."""
        operator = GuardrailRef.parse(key.guardrail) if key.guardrail else self._default
        identifier, version = headers.get(ID_HEADER), headers.get(VERSION_HEADER)
        asked: GuardrailRef | None = None
        if identifier or version:
            asked = GuardrailRef.parse(f"{identifier or ''}:{version or ''}")
            if asked is None:
                raise InvalidRequestError(
                    "X-Amzn-Bedrock-GuardrailIdentifier and X-Amzn-Bedrock-GuardrailVersion "
                    "must name a guardrail id (or ARN) and a version (a number or DRAFT).",
                    param=ID_HEADER,
                )
        if operator is not None and asked is not None and asked != operator:
            raise InvalidRequestError(
                f"This key is held to guardrail {operator}; a request cannot name another.",
                param=ID_HEADER,
                code="guardrail_not_permitted",
            )
        return operator or asked

    # -- input ---------------------------------------------------------------------------------

    def start_input(self, call: Call) -> PendingInput | None:
        """Resolve the guardrail and start the input check beside admission; None if unguarded."""
        if call.parsed is None or not call.route.billable:
            return None
        ref = self.resolve(call.key, call.request.headers)
        if ref is None:
            return None
        call.guard = GuardState(ref)
        data = json.loads(call.request.body)  # a copy of the body the masked texts go into
        slots = call.family.input_slots(call.route, data)
        if not slots:
            return None
        texts, deadline = guard_text.texts(slots), call.request.deadline
        future = self._submit(lambda: self._client.apply(ref, "INPUT", texts, deadline))
        return PendingInput(future, data, slots)

    def finish_input(self, call: Call, pending: PendingInput) -> None:
        """Wait for the input check (after admission), then apply its mask: the body that is
        signed and sent is the masked one. A block is left on `call.guard` for the pipeline."""
        data, slots = pending.data, pending.slots
        try:
            verdict = pending.future.result()
        except GuardrailUnavailable as exc:
            self._unavailable(call, exc, "INPUT")
            return
        assert call.guard is not None
        assert call.parsed is not None
        call.guard.add(verdict)
        if verdict.intervened and not verdict.blocked:
            guard_text.write(slots, list(verdict.outputs))
            body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
            call.request = dataclasses.replace(call.request, body=body)
            call.parsed = dataclasses.replace(call.parsed, data=data)

    @staticmethod
    def refusal(call: Call) -> InvalidRequestError:
        """The 400 for blocked input, with the guardrail's own message."""
        assert call.guard is not None
        return InvalidRequestError(
            call.guard.message, code="guardrail_intervened", headers=dict([call.guard.header])
        )

    # -- output --------------------------------------------------------------------------------

    def check_body(self, call: Call, answer: dict[str, Any], content: bytes) -> bytes:
        """A whole JSON answer after its output check: the same bytes, or the changed answer."""
        if not answer or not self.check_output(call, answer):
            return content
        return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()

    def check_output(self, call: Call, answer: dict[str, Any]) -> bool:
        """Check a whole answer's text; True when the answer was changed (re-serialize it)."""
        guard = call.guard
        if guard is None:
            return False
        slots = call.family.output_slots(call.route, answer)
        texts = guard_text.texts(slots)
        if not any(texts):
            return False
        try:
            verdict = self._client.apply(guard.ref, "OUTPUT", texts, call.request.deadline)
        except GuardrailUnavailable as exc:
            self._unavailable(call, exc, "OUTPUT")
            return False
        guard.add(verdict)
        if not verdict.intervened:
            return False
        replaced = list(verdict.outputs) if not verdict.blocked else [verdict.outputs[0]]
        replaced += [""] * (len(slots) - len(replaced))
        guard_text.write(slots, replaced)
        call.family.mark_filtered(call.route, answer)
        return True

    def guarded_stream(self, call: Call, relay: Relay) -> GuardedStream:
        """The relay's events, released in checked windows (`stream/guard_window.py`)."""
        assert call.route.surface is not None
        return GuardedStream(
            relay,
            dialect=DIALECTS[call.route.surface](),
            check=lambda text: self._check_window(call, text),
            window=self._window,
        )

    def _check_window(self, call: Call, text: str) -> tuple[str, str]:
        assert call.guard is not None
        try:
            verdict = self._client.apply(call.guard.ref, "OUTPUT", [text], call.request.deadline)
        except GuardrailUnavailable as exc:
            try:
                self._unavailable(call, exc, "OUTPUT")
            except ServiceUnavailableError:
                return "fail", ""
            return "pass", text
        call.guard.add(verdict)
        if not verdict.intervened:
            return "pass", text
        return ("block" if verdict.blocked else "mask"), verdict.outputs[0]

    # -- failure and cost ----------------------------------------------------------------------

    def _unavailable(self, call: Call, exc: GuardrailUnavailable, source: str) -> None:
        extra = {"request_id": call.request_id, "reason": exc.reason, "source": source}
        assert call.guard is not None
        if not self._fail_open:
            metric("GuardrailFailClosed")
            raise ServiceUnavailableError(
                "The guardrail service is unavailable; try again.",
                code="guardrail_unavailable",
                headers=dict([call.guard.header]),
            ) from exc
        call.guard.failed_open = True
        metric("GuardrailFailOpen")
        logger.warning("guardrail_failed_open", extra=extra)

    def cost(self, guard: GuardState) -> Decimal:
        return (guard.units * self._price / _THOUSAND).quantize(Decimal("1e-10"))

    def stamp(self, record: UsageRecord, guard: GuardState | None) -> UsageRecord:
        """The usage record with the guardrail, its action, its units and their cost added."""
        if guard is None:
            return record
        cost = self.cost(guard)
        return dataclasses.replace(
            record,
            guardrail=str(guard.ref),
            guardrail_action=guard.action,
            guardrail_text_units=guard.units,
            guardrail_cost_usd=cost,
            cost_usd=record.cost_usd + cost,
        )

    def _submit(self, task: Callable[[], Verdict]) -> Future[Verdict]:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor  # not at import: cold start

            self._pool = ThreadPoolExecutor(_POOL_WORKERS, thread_name_prefix="guardrail")
        return self._pool.submit(task)
