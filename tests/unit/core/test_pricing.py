"""Cost per usage: exact decimals, cached rate, unknown models cost nothing."""

from decimal import Decimal

from mantle_gateway.core.pricing import PriceTable
from mantle_gateway.usage import TokenCounts


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


def test_cache_writes_use_the_cache_write_rate_and_reads_the_cached_rate() -> None:
    # GIVEN a model with all four prices (Anthropic Messages: reads and writes of a prompt cache)
    table = PriceTable(
        {"acme.claude": {"input": 3, "output": 15, "cached": 0.3, "cache_write": 3.75}}
    )
    # WHEN 1,000 input tokens of which 200 were cache reads and 300 cache writes
    tokens = TokenCounts(input=1000, output=10, cached=200, cache_write=300)
    # THEN each part is charged at its own rate
    expected = (
        500 * Decimal(3) + 200 * Decimal("0.3") + 300 * Decimal("3.75") + 10 * 15
    ) / Decimal(1_000_000)
    assert table.cost("acme.claude", tokens) == expected


def test_cache_writes_without_their_own_price_cost_the_input_rate() -> None:
    table = PriceTable({"acme.model": {"input": 1, "output": 2}})
    assert table.cost("acme.model", TokenCounts(input=100, cache_write=100)) == Decimal("0.0001")
