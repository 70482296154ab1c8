"""The report's aggregation: per day, per surface and model, the items to look at twice, the
share of the budget used, and sparse token counts (reasoning, cache writes) read as zero."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mantle_gateway.core import report


def _item(**fields: Any) -> dict[str, Any]:
    return {
        "key_id": "key_a",
        "model": "openai.gpt-oss-120b",
        "timestamp": "2030-03-05T10:00:00.000000Z",
        "input_tokens": 100,
        "output_tokens": 10,
        "cached_tokens": 0,
        "cost_usd": Decimal("0.25"),
        "status": "ok",
        "api_surface": "chat_completions",
    } | fields


def test_days_surfaces_and_models_add_up_to_the_key_total() -> None:
    items = [
        _item(),
        _item(timestamp="2030-03-05T23:59:59.999999Z", api_surface="messages", model="m2"),
        _item(timestamp="2030-03-31T00:00:00.000000Z", cost_usd=Decimal("0.0000000001")),
    ]
    key = report.aggregate(items)["key_a"]
    assert {day: t.requests for day, t in key.by_day.items()} == {
        "2030-03-05": 2,
        "2030-03-31": 1,
    }
    assert key.by_day["2030-03-05"].cost_usd == Decimal("0.50")
    for split in (key.by_day, key.by_model, key.by_surface):
        assert sum((t.cost_usd for t in split.values()), Decimal(0)) == key.totals.cost_usd
    assert set(key.by_surface) == {"chat_completions", "messages"}
    assert key.by_model["openai.gpt-oss-120b"].requests == 2


def test_sparse_tokens_count_as_zero_and_are_summed_when_present() -> None:
    key = report.aggregate(
        [_item(), _item(cache_write_tokens=40, reasoning_tokens=3), _item(cache_write_tokens=2)]
    )["key_a"]
    assert key.totals.cache_write_tokens == 42
    assert key.totals.reasoning_tokens == 3
    assert "cache_write_tokens" in report.CSV_COLUMNS
    row = report.as_rows("2030-03", [key])[-1]
    assert row["cache_write_tokens"] == 42


def test_an_item_without_a_surface_is_grouped_as_other() -> None:
    item = _item()
    del item["api_surface"]
    key = report.aggregate([item])["key_a"]
    assert list(key.by_surface) == [report.IMPLICIT_SURFACE]


def test_estimated_incomplete_and_unbilled_items_are_each_counted_once() -> None:
    items = [
        _item(),
        _item(status="incomplete", estimated=True, outcome="client_disconnected"),
        _item(status="incomplete", outcome="upstream_dropped"),
        _item(model="acme.unpriced", cost_usd=Decimal(0)),
        _item(cost_usd=Decimal(0), input_tokens=0, output_tokens=0),  # nothing used: not flagged
    ]
    key = report.aggregate(items)["key_a"]
    flagged = {group: t.requests for group, t in key.attention.items()}
    assert flagged == {
        (("estimated", "incomplete"), "openai.gpt-oss-120b"): 1,
        (("incomplete",), "openai.gpt-oss-120b"): 1,
        (("unbilled",), "acme.unpriced"): 1,
    }
    assert set(report.ATTENTION) == {"estimated", "incomplete", "unbilled"}


def test_budget_share_prefers_the_spend_counter_and_flags_80_percent() -> None:
    key = report.aggregate([_item(cost_usd=Decimal("7.99"))])["key_a"]
    assert key.budget_used_pct is None and not key.near_budget
    key.budget_usd = Decimal(10)
    assert key.budget_used_pct == Decimal("79.9") and not key.near_budget
    key.spend_counter_usd = Decimal("8.00")
    assert key.budget_used_pct == Decimal(80) and key.near_budget
    assert key.remaining_usd == Decimal("2.00")
    key.budget_usd = Decimal(0)  # a frozen key: no share to show, nothing to flag
    assert key.budget_used_pct is None and not key.near_budget


def test_json_carries_days_attention_budget_share_and_month_totals() -> None:
    reports = report.aggregate(
        [
            _item(),
            _item(key_id="key_b", status="incomplete", estimated=True),
            _item(key_id="key_b", timestamp="2030-03-06T01:00:00.000000Z"),
        ]
    )
    reports["key_a"].budget_usd = Decimal(1)
    document = report.as_json("2030-03", [reports["key_a"], reports["key_b"]])
    assert document["totals"]["requests"] == 3
    assert document["totals"]["cost_usd"] == "0.75"
    first, second = document["keys"]
    assert first["budget_used_pct"] == "25.0" and first["near_budget"] is False
    assert second["budget_used_pct"] is None
    assert [d["day"] for d in second["by_day"]] == ["2030-03-05", "2030-03-06"]
    assert second["attention"] == [
        {
            "reasons": ["estimated", "incomplete"],
            "model": "openai.gpt-oss-120b",
            "requests": 1,
            "input_tokens": 100,
            "output_tokens": 10,
            "cached_tokens": 0,
            "reasoning_tokens": 0,
            "cache_write_tokens": 0,
            "cost_usd": "0.25",
        }
    ]
