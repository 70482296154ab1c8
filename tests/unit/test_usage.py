"""The usage item: sparse attributes are absent unless they carry something; upstream usage
numbers are validated before they can become one."""

import math
from decimal import Decimal

import pytest

from mantle_gateway.usage import (
    MAX_TOKENS_PER_COUNT,
    InvalidUsage,
    TokenCounts,
    UsageRecord,
    from_chat_usage,
    from_messages_usage,
    from_responses_usage,
    parse_upstream_json,
)


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


# -- usage numbers from upstream are validated ---------------------------------------------

BAD_COUNTS = [
    float("nan"),
    float("inf"),
    float("-inf"),
    -1,
    1.5,
    7.0,  # a float, even a whole one: Mantle counts in JSON integers
    1e45,
    MAX_TOKENS_PER_COUNT + 1,
    10**40,
    "7",
    True,
    [],
    {},
]


@pytest.mark.parametrize("bad", BAD_COUNTS, ids=repr)
@pytest.mark.parametrize(
    ("read", "field"),
    [
        (from_chat_usage, "prompt_tokens"),
        (from_chat_usage, "completion_tokens"),
        (from_responses_usage, "input_tokens"),
        (from_responses_usage, "output_tokens"),
    ],
)
def test_a_main_count_that_is_not_a_sane_integer_is_invalid(read, field, bad) -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 4, "input_tokens": 3, "output_tokens": 4}
    usage[field] = bad
    with pytest.raises(InvalidUsage):
        read(usage)


@pytest.mark.parametrize("bad", BAD_COUNTS, ids=repr)
def test_a_detail_count_that_is_not_a_sane_integer_is_invalid(bad) -> None:
    usage = {"input_tokens": 3, "output_tokens": 4, "input_tokens_details": {"cached_tokens": bad}}
    with pytest.raises(InvalidUsage):
        from_responses_usage(usage)


@pytest.mark.parametrize(
    "usage",
    [
        "12",
        [1, 2],
        {"completion_tokens": 4},  # no prompt count: not a usage anyone can bill
        {"prompt_tokens": 3, "completion_tokens": 4, "prompt_tokens_details": "x"},
    ],
)
def test_malformed_chat_usage_is_invalid(usage) -> None:
    with pytest.raises(InvalidUsage):
        from_chat_usage(usage)


def test_absent_usage_is_missing_and_absent_details_count_zero() -> None:
    assert from_chat_usage(None) is None
    assert from_responses_usage(None) is None
    assert from_chat_usage(
        {
            "prompt_tokens": 0,
            "completion_tokens": MAX_TOKENS_PER_COUNT,
            "prompt_tokens_details": None,
        }
    ) == TokenCounts(input=0, output=MAX_TOKENS_PER_COUNT)


def test_upstream_json_keeps_every_value_and_never_raises() -> None:
    parsed = parse_upstream_json(
        b'{"id":"r","usage":{"prompt_tokens":NaN},"created":17000000000000}'
    )
    assert parsed is not None
    assert parsed["id"] == "r" and parsed["created"] == 17000000000000
    assert math.isnan(parsed["usage"]["prompt_tokens"])
    huge = parse_upstream_json(b'{"usage":{"prompt_tokens":' + b"9" * 5000 + b"}}")
    assert huge == {"usage": {"prompt_tokens": math.inf}}, "over 4,300 digits is not a ValueError"
    assert parse_upstream_json(b"[" * 100_000) is None
    assert parse_upstream_json(b"not json") is None
    assert parse_upstream_json(b"[1]") is None


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
