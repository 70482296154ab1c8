"""Cost per usage: exact decimals, cached rate, unknown models cost nothing."""

from decimal import Decimal

from mantle_gateway.core.pricing import PriceTable
from mantle_gateway.core.usage import TokenCounts


def test_cost_of_bundled_model() -> None:
    table = PriceTable()
    cost = table.cost("openai.gpt-oss-120b", TokenCounts(input=1_000_000, output=500_000))
    assert cost == Decimal("0.45")


def test_cached_tokens_use_the_cached_rate() -> None:
    table = PriceTable()
    cost = table.cost("openai.gpt-5.5", TokenCounts(input=1000, output=0, cached=400))
    assert cost == (Decimal(600) * Decimal("5.50") + Decimal(400) * Decimal("0.55")) / 1_000_000


def test_override_and_unknown_model() -> None:
    table = PriceTable({"acme.model": {"input": 1.0, "output": 2.0}})
    assert table.cost("acme.model", TokenCounts(input=1, output=1)) == Decimal("0.000003")
    assert table.cost("nobody.knows", TokenCounts(input=10)) is None
