"""Latency with an empty usage table and with 10,000 usage items stored: is the local DynamoDB's
cost flat?

moto's TransactWriteItems used to deep-copy every table it touched for its rollback, so every
usage write got slower with every item stored (docs/decisions/0008). The same key's requests
are timed on fresh tables, then again once the key's month holds `Sizes.stored_items` usage
items (written with BatchWriteItem, shaped as the gateway writes them). Requests are settled
(each waits, untimed, for the previous one's usage write), as in the c=1 latency row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bench import client, load, payloads
from bench.config import Sizes
from bench.stack import Stack
from bench.stats import median, percentile


@dataclass(frozen=True, slots=True)
class StoredResult:
    items: int
    empty_p50: float
    """Seconds, median over repetitions: the gateway's p50 with no usage item stored."""
    full_p50: float
    """The same once `items` usage items are stored."""


def measure(stack: Stack, sizes: Sizes) -> StoredResult:
    body = payloads.chat_body(payloads.NON_STREAM_TOKENS, stream=False)
    empty: list[float] = []
    full: list[float] = []
    for _ in range(sizes.repeats):
        key = stack.fresh_key()
        target = client.via_gateway(stack.gateway_url, key.secret)
        empty.append(_p50(stack, target, body, sizes.stored_requests))
        _store_usage(stack, key.record.key_id, sizes.stored_items)
        full.append(_p50(stack, target, body, sizes.stored_requests))
    return StoredResult(sizes.stored_items, median(empty), median(full))


def _p50(stack: Stack, target: client.Target, body: bytes, requests: int) -> float:
    samples = load.run(
        target, body, workers=1, per_worker=requests, timer=client.timed_post, settle=stack.settle
    )
    return percentile(samples, 50)


def _store_usage(stack: Stack, key_id: str, count: int) -> None:
    from mantle_gateway.store.dynamo import to_item
    from mantle_gateway.usage import TokenCounts, UsageRecord

    assert stack.dynamo is not None
    now = datetime.now(UTC)
    table = stack.settings.usage_table
    for first in range(0, count, 25):
        batch: list[Any] = []
        for n in range(first, min(first + 25, count)):
            item = UsageRecord(
                request_id=f"bench-stored-{n}",
                timestamp=now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{n % 1_000_000:06d}Z",
                key_id=key_id,
                model=payloads.MODEL,
                tokens=TokenCounts(input=5, output=payloads.NON_STREAM_TOKENS),
                cost_usd=Decimal("0.0000149"),
                status="ok",
                latency_ms=1,
                door="local",
                stream=False,
                api_surface="chat_completions",
            ).item()
            batch.append({"PutRequest": {"Item": to_item(item)}})
        stack.dynamo.client.batch_write_item(RequestItems={table: batch})
