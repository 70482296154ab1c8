"""Admission decides with one write and leaves nothing behind: what it reserves (worst-case tokens
under tpm, cost under a budget, with a hold that expires), what it gives back when the write's
outcome is unknown, and how expired holds are swept (off the path, or first when they are what
refuses the request)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mantle_gateway.core import body, routes
from mantle_gateway.core.admission import DEADLINE_SKEW_SECONDS, Admission
from mantle_gateway.core.call import Call
from mantle_gateway.core.openai_api import OpenAIFamily
from mantle_gateway.core.pricing import PriceTable
from mantle_gateway.errors import BudgetExceededError, RateLimitError, ServiceUnavailableError
from mantle_gateway.messages import GatewayRequest
from mantle_gateway.settings import Settings
from mantle_gateway.store.dynamo import StoreError
from mantle_gateway.store.keys import KeyRecord
from mantle_gateway.store.limits import Ask, Hold, RateState, Reservation, Verdict
from mantle_gateway.upstream.routing import PrefixRouter
from mantle_gateway.usage import TokenCounts

STARTED = datetime(2026, 11, 24, 12, 0, 10, tzinfo=UTC).timestamp()
BODY = b'{"model":"openai.gpt-oss-20b","messages":[],"max_tokens":50}'
EXPIRED = (Hold("gone", Decimal("0.5"), Decimal(1)),)


class FakeLimits:
    def __init__(self, *verdicts: Verdict | Exception) -> None:
        self.verdicts = list(verdicts)
        self.asks: list[Ask] = []
        self.released: list[Reservation] = []
        self.swept: list[tuple[str, str, tuple[Hold, ...]]] = []

    def admit(self, ask: Ask) -> Verdict:
        self.asks.append(ask)
        verdict = self.verdicts.pop(0)
        if isinstance(verdict, Exception):
            raise verdict
        return verdict

    def release(self, reservation: Reservation) -> None:
        self.released.append(reservation)

    def sweep(self, key_id: str, month: str, holds: Sequence[Hold]) -> None:
        self.swept.append((key_id, month, tuple(holds)))


class Later:
    """Runs nothing until the test says so: shows what waits off the client's path."""

    def __init__(self) -> None:
        self.tasks: list[tuple[str, Callable[[], None]]] = []

    def __call__(self, name: str, task: Callable[[], None]) -> bool:
        self.tasks.append((name, task))
        return True

    def run(self) -> None:
        for _name, task in self.tasks:
            task()


def make_call(
    *,
    budget: str | None = "1",
    tpm: int | None = None,
    deadline: float | None = None,
    **data: object,
) -> Call:
    raw = body.parse(BODY)
    parsed = body.ParsedBody({**raw.data, **data}, raw.model, raw.stream)
    key = KeyRecord(
        key_id="key_1",
        digest="d",
        name="t",
        monthly_budget_usd=Decimal(budget) if budget is not None else None,
        tpm=tpm,
    )
    request = GatewayRequest("POST", "/v1/chat/completions", body=BODY, deadline=deadline)
    route = routes.match("POST", "/v1/chat/completions", passthrough_enabled=True)
    now = datetime.fromtimestamp(STARTED, UTC)
    family = OpenAIFamily(PrefixRouter(()))
    return Call(request, "req-1", STARTED, now, route, key, parsed, rate=None, family=family)


def admission(limits: FakeLimits, later: Later) -> Admission:
    return Admission(
        settings=Settings.from_env({"RESERVATION_EXPIRY_SECONDS": "600"}),
        limits=limits,
        prices=PriceTable(),
        later=later,
    )


def admitted(reservation: Reservation | None = None, expired: tuple[Hold, ...] = ()) -> Verdict:
    return Verdict(None, None, reservation, expired)


def test_the_ask_reserves_worst_case_tokens_and_cost_with_a_hold() -> None:
    limits = FakeLimits(admitted())
    admission(limits, Later()).admit(make_call(tpm=1000))
    (ask,) = limits.asks
    worst_tokens = len(BODY) // 4 + 50
    assert (ask.tpm, ask.tokens) == (1000, worst_tokens)
    assert ask.amount == PriceTable().cost(
        "openai.gpt-oss-20b", TokenCounts(input=len(BODY) // 4, output=50)
    )
    assert ask.request_id == "req-1" and ask.holds
    assert ask.expires == Decimal(int(STARTED) + 600), "no deadline: the settings' bound"


def test_a_deadline_bounds_the_hold_unless_the_response_runs_in_the_background() -> None:
    limits = FakeLimits(admitted(), admitted())
    gate = admission(limits, Later())
    gate.admit(make_call(deadline=STARTED + 29.5))
    gate.admit(make_call(deadline=STARTED + 29.5, background=True))
    assert limits.asks[0].expires == Decimal(int(STARTED) + 30 + DEADLINE_SKEW_SECONDS)
    assert limits.asks[1].expires == Decimal(int(STARTED) + 600)


def test_an_unknown_outcome_gives_the_hold_back_off_the_path() -> None:
    limits, later = FakeLimits(StoreError("ReadTimeoutError")), Later()
    with pytest.raises(ServiceUnavailableError):
        admission(limits, later).admit(make_call(tpm=1000))
    assert limits.released == [], "the client is not kept waiting for it"
    assert [name for name, _task in later.tasks] == ["release req-1"]
    later.run()
    (ask,) = limits.asks
    # Only the hold: the tokens (if the write applied) go with their minute's window.
    assert limits.released == [Reservation("key_1", "2026-11", "req-1", ask.amount)]


def test_an_unknown_outcome_without_a_budget_has_nothing_to_give_back() -> None:
    limits, later = FakeLimits(StoreError("down")), Later()
    with pytest.raises(ServiceUnavailableError):
        admission(limits, later).admit(make_call(budget=None, tpm=1000))
    assert later.tasks == []


def test_expired_holds_seen_by_an_admitted_request_are_swept_off_the_path() -> None:
    reservation = Reservation("key_1", "2026-11", "req-1", Decimal("0.1"))
    limits, later = FakeLimits(admitted(reservation, EXPIRED)), Later()
    call = make_call()
    admission(limits, later).admit(call)
    assert call.reservation == reservation
    assert limits.swept == []
    later.run()
    assert limits.swept == [("key_1", "2026-11", EXPIRED)]


def test_a_budget_refusal_caused_by_expired_holds_is_decided_again_after_the_sweep() -> None:
    reservation = Reservation("key_1", "2026-11", "req-1", Decimal("0.1"))
    limits = FakeLimits(Verdict("budget", None, None, EXPIRED), admitted(reservation))
    call = make_call()
    admission(limits, Later()).admit(call)
    assert limits.swept == [("key_1", "2026-11", EXPIRED)]
    assert len(limits.asks) == 2 and call.reservation == reservation


def test_a_budget_refusal_stands_when_the_holds_were_not_what_refused() -> None:
    limits = FakeLimits(Verdict("budget", None, None, EXPIRED), Verdict("budget", None))
    with pytest.raises(BudgetExceededError):
        admission(limits, Later()).admit(make_call())
    assert len(limits.swept) == 1


def test_a_rate_refusal_sweeps_off_the_path_and_stays_refused() -> None:
    rate = RateState(None, 100, 1, 120, 50)
    limits, later = FakeLimits(Verdict("rate", rate, None, EXPIRED)), Later()
    with pytest.raises(RateLimitError) as refused:
        admission(limits, later).admit(make_call(tpm=100))
    assert refused.value.headers["x-ratelimit-remaining-tokens"] == "0"
    later.run()
    assert limits.swept == [("key_1", "2026-11", EXPIRED)]


def test_release_gives_back_the_reservation_and_survives_a_store_error() -> None:
    class Failing(FakeLimits):
        def release(self, reservation: Reservation) -> None:
            raise StoreError("down")

    reservation = Reservation("key_1", "2026-11", "req-1", Decimal("0.1"), 90, 202611241200)
    call = make_call()
    call.reservation = reservation
    limits = FakeLimits()
    admission(limits, Later()).release(call)
    assert limits.released == [reservation]
    admission(Failing(), Later()).release(call)  # logged; the hold expires
