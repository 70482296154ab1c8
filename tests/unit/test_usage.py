"""The usage item: sparse attributes are absent unless they carry something."""

from decimal import Decimal

from mantle_gateway.usage import TokenCounts, UsageRecord, from_messages_usage


def _record(tokens: TokenCounts) -> UsageRecord:
    return UsageRecord(
        request_id="r1",
        timestamp="2026-12-02T10:00:00.000000Z",
        key_id="key_1",
        model="m",
        tokens=tokens,
        cost_usd=Decimal(0),
        status="ok",
        latency_ms=1,
        door="local",
        stream=False,
    )


def test_cache_write_tokens_are_sparse() -> None:
    assert "cache_write_tokens" not in _record(TokenCounts(input=5)).item()
    item = _record(TokenCounts(input=5, cache_write=3)).item()
    assert item["cache_write_tokens"] == 3
    assert item["input_tokens"] == 5


def test_messages_usage_counts_cache_reads_and_writes_as_input() -> None:
    usage = {
        "input_tokens": 10,
        "cache_read_input_tokens": 200,
        "cache_creation_input_tokens": 30,
        "output_tokens": 7,
    }
    assert from_messages_usage(usage) == TokenCounts(
        input=240, output=7, cached=200, cache_write=30
    )
    assert from_messages_usage({"input_tokens": 4, "output_tokens": 1}) == TokenCounts(4, 1)
    assert from_messages_usage(None) is None
