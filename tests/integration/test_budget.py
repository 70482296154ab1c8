"""Monthly budgets: checked before the upstream call, reset by the calendar, never by a job."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx

from mantle_gateway.store.limits import LimitsStore

MODEL = "openai.gpt-oss-120b"


def chat(url: str, key: str, max_tokens: int = 50) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        headers={"x-api-key": key},
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": max_tokens,
        },
        timeout=10,
    )


def test_budget_refuses_before_upstream_then_resets_next_month(
    start_gateway, new_key, sim, usage_items, settings, dynamo
) -> None:
    # GIVEN a gateway whose clock we move, and a key with a budget of a few requests
    now = [datetime(2026, 11, 30, 23, 50, tzinfo=UTC).timestamp()]
    door = start_gateway(clock=lambda: now[0])
    budget = Decimal("0.0001")  # each request costs a little over 0.00006 (100 output tokens)
    key, record = new_key(monthly_budget_usd=budget)
    # WHEN spend crosses the budget
    assert chat(door.url, key, max_tokens=100).status_code == 200
    usage_items(record.key_id, count=1, month="2026-11")
    assert chat(door.url, key, max_tokens=100).status_code == 200
    usage_items(record.key_id, count=2, month="2026-11")
    refused = chat(door.url, key)
    # THEN the next request is refused before the simulator sees it
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "budget_exceeded"
    assert refused.json()["error"]["type"] == "insufficient_quota"
    assert len(sim.requests) == 2
    counters = LimitsStore(dynamo, settings.limits_table).spend(record.key_id, "2026-11")
    assert counters["spent_usd"] == counters["committed_usd"] > budget
    # WHEN the month changes, THEN requests pass again, counted in the new month
    now[0] = datetime(2026, 12, 1, 0, 0, 5, tzinfo=UTC).timestamp()
    assert chat(door.url, key).status_code == 200
    assert len(sim.requests) == 3


def test_reservation_released_when_upstream_refuses(
    start_gateway, new_key, sim, settings, dynamo
) -> None:
    from mantle_gateway import simulator

    door = start_gateway()
    key, record = new_key(monthly_budget_usd=Decimal("5"))
    sim.inject(simulator.ErrorAnswer(status=500))
    assert chat(door.url, key).status_code == 500
    month = datetime.now(UTC).strftime("%Y-%m")
    counters = LimitsStore(dynamo, settings.limits_table).spend(record.key_id, month)
    assert counters["committed_usd"] == 0
    assert counters["spent_usd"] == 0


def test_rate_limit_and_budget_together(
    start_gateway, new_key, sim, usage_items, settings, dynamo
) -> None:
    """One write decides both: a rate refusal reserves nothing, and a budget refusal takes no
    rate slot yet still carries the rate-limit headers."""
    door = start_gateway()
    key, record = new_key(monthly_budget_usd=Decimal("5"), rpm=1)
    assert chat(door.url, key).status_code == 200
    usage_items(record.key_id)
    refused = chat(door.url, key)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    month = datetime.now(UTC).strftime("%Y-%m")
    counters = LimitsStore(dynamo, settings.limits_table).spend(record.key_id, month)
    assert counters["committed_usd"] == counters["spent_usd"], "the refused request's reservation"

    broke, _ = new_key(monthly_budget_usd=Decimal("0"), rpm=5)
    answer = chat(door.url, broke)
    assert answer.json()["error"]["code"] == "budget_exceeded"
    assert answer.headers["x-ratelimit-limit-requests"] == "5"
    assert answer.headers["x-ratelimit-remaining-requests"] == "5"
    assert len(sim.requests) == 1
