"""Anthropic Messages through real servers, driven by the official anthropic SDK as users drive it.

GIVEN the local door, DynamoDB (moto server) and the Mantle simulator,
WHEN a client calls `messages.create` (streamed and not), `messages.stream(...)` and
`messages.count_tokens`, sync and async, with base URL `<gateway>/anthropic` and a gateway key,
THEN answers arrive intact, the simulator saw a valid SigV4 signature, `anthropic-version` and
the client's betas but never the gateway key, and each billable call left one usage item on the
`messages` surface whose input counts the prompt cache, priced with the cache-write rate.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from mantle_gateway import simulator
from mantle_gateway.doors.local import LocalServer
from mantle_gateway.store.limits import LimitsStore

MODEL = "anthropic.claude-haiku-4-5"
PRICES = {MODEL: {"input": 1.0, "output": 5.0, "cached": 0.1, "cache_write": 1.25}}
HELLO: Any = [{"role": "user", "content": "say something nice"}]  # 3 words: 3 input tokens


@pytest.fixture(scope="module")
def priced(start_gateway: Callable[..., LocalServer]) -> LocalServer:
    """A door whose price table knows the Claude model (PRICES_JSON's override)."""
    return start_gateway(price_overrides=PRICES)


def cost(fresh: int, read: int, written: int, output: int) -> Decimal:
    per_million = fresh * 1 + read * Decimal("0.1") + written * Decimal("1.25") + output * 5
    return (per_million / 1_000_000).quantize(Decimal("1e-10"))


SDK_VERSION = anthropic._constants.ANTHROPIC_API_VERSION
"""The `anthropic-version` the SDK sends (2026-10-21 for anthropic 2.10): forwarded as sent."""


def assert_clean_upstream(
    sim: simulator.Simulator, secret: str, version: str = SDK_VERSION
) -> None:
    assert sim.requests, "the simulator saw no request"
    for seen in sim.requests:
        assert seen.signature_ok, seen.signature_error
        assert seen.headers["anthropic-version"] == version
        assert "x-api-key" not in seen.headers
        assert all(secret not in value for value in seen.headers.values())


def test_create_bills_the_messages_surface_with_cache_counts(
    sim, priced, claude, new_key, usage_items
) -> None:
    sim.cached_tokens, sim.cache_write_tokens = 2000, 100
    secret, record = new_key()
    message = claude(secret, url=priced.url).messages.create(
        model=MODEL, max_tokens=1024, messages=HELLO
    )
    assert message.content[0].text == "".join(f"tok{i} " for i in range(8))  # type: ignore[union-attr]
    assert message.usage.input_tokens == 3
    assert message.usage.cache_read_input_tokens == 2000
    assert message.usage.cache_creation_input_tokens == 100
    assert_clean_upstream(sim, secret)
    assert sim.requests[0].path == "/anthropic/v1/messages"
    (item,) = usage_items(record.key_id)
    assert item["api_surface"] == "messages"
    assert item["model"] == MODEL
    assert item["input_tokens"] == 3 + 2000 + 100
    assert item["cached_tokens"] == 2000
    assert item["cache_write_tokens"] == 100
    assert item["output_tokens"] == 8
    assert item["total_tokens"] == 2103 + 8
    assert item["cost_usd"] == cost(3, 2000, 100, 8)
    assert item["stream"] is False and item["status"] == "ok" and item["door"] == "local"
    assert "estimated" not in item and "reasoning_tokens" not in item


def test_create_stream_is_relayed_and_metered(sim, claude, new_key, usage_items) -> None:
    sim.message_tokens = 12
    secret, record = new_key()
    events = list(
        claude(secret).messages.create(model=MODEL, max_tokens=64000, messages=HELLO, stream=True)
    )
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds.count("content_block_delta") == 12
    assert events[-2].usage.output_tokens == 12  # type: ignore[union-attr]
    (item,) = usage_items(record.key_id)
    assert (item["input_tokens"], item["output_tokens"]) == (3, 12)
    assert item["stream"] is True and item["status"] == "ok" and item["api_surface"] == "messages"
    assert "cache_write_tokens" not in item


def test_stream_helper_gives_text_and_final_message(sim, claude, new_key, usage_items) -> None:
    secret, record = new_key()
    with claude(secret).messages.stream(model=MODEL, max_tokens=5, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "tok0 tok1 tok2 tok3 tok4 "
    assert final.stop_reason == "max_tokens"
    (item,) = usage_items(record.key_id)
    assert item["output_tokens"] == final.usage.output_tokens == 5


def test_bearer_token_works_as_claude_codes_auth_token(sim, claude, new_key, usage_items) -> None:
    secret, record = new_key()
    message = claude(auth_token=secret).messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert message.usage.output_tokens == 8
    assert_clean_upstream(sim, secret)
    assert usage_items(record.key_id)[0]["api_surface"] == "messages"


def test_count_tokens_is_checked_but_not_billed(sim, claude, new_key, usage_items) -> None:
    secret, record = new_key(rpm=2, models=("anthropic.*",))
    client = claude(secret)
    counted = client.messages.with_raw_response.count_tokens(model=MODEL, messages=HELLO)
    assert counted.parse().input_tokens == 3
    # counted toward the key's requests per minute like any other call...
    assert counted.headers["anthropic-ratelimit-requests-remaining"] == "1"
    assert sim.requests[-1].path == "/anthropic/v1/messages/count_tokens"
    # ...and checked against the key's models,
    with pytest.raises(anthropic.PermissionDeniedError):
        client.messages.count_tokens(model="openai.gpt-oss-120b", messages=HELLO)
    # but no usage item: the next call, on the same connection, writes the only one.
    client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    (item,) = usage_items(record.key_id)
    assert item["api_surface"] == "messages" and item["output_tokens"] == 8


def test_async_client_creates_streams_and_counts(gateway, new_key, usage_items) -> None:
    secret, record = new_key()

    async def main() -> tuple[str, str, int]:
        async with anthropic.AsyncAnthropic(
            base_url=gateway.url + "/anthropic", api_key=secret, max_retries=0
        ) as client:
            message = await client.messages.create(model=MODEL, max_tokens=3, messages=HELLO)
            async with client.messages.stream(model=MODEL, max_tokens=4, messages=HELLO) as stream:
                streamed = "".join([text async for text in stream.text_stream])
            counted = await client.messages.count_tokens(model=MODEL, messages=HELLO)
            return message.content[0].text, streamed, counted.input_tokens  # type: ignore[union-attr]

    text, streamed, counted = asyncio.run(main())
    assert (text, streamed, counted) == ("tok0 tok1 tok2 ", "tok0 tok1 tok2 tok3 ", 3)
    items = usage_items(record.key_id, count=2)
    assert sorted((i["stream"], i["output_tokens"]) for i in items) == [(False, 3), (True, 4)]


def test_claude_code_request_shape_reaches_mantle_as_sent(sim, gateway, new_key) -> None:
    """What Claude Code sends: `?beta=true`, `x-api-key`, a long `anthropic-beta`, streamed."""
    secret, _ = new_key()
    betas = "claude-code-20250219,interleaved-thinking-2025-05-14,effort-2025-11-24"
    answer = httpx.post(
        gateway.url + "/anthropic/v1/messages?beta=true",
        headers={
            "x-api-key": secret,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": betas,
            "anthropic-dangerous-direct-browser-access": "true",
            "x-app": "cli",
        },
        json={"model": MODEL, "max_tokens": 64000, "stream": True, "messages": HELLO},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/event-stream"
    assert answer.text.startswith("event: message_start\n")
    assert answer.text.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')
    (seen,) = sim.requests
    assert seen.query == "beta=true"
    assert seen.headers["anthropic-beta"] == betas
    assert "x-app" not in seen.headers
    assert "anthropic-dangerous-direct-browser-access" not in seen.headers
    assert_clean_upstream(sim, secret, "2023-06-01")


def test_missing_anthropic_version_is_sent_as_2023_06_01(sim, gateway, new_key) -> None:
    secret, _ = new_key()
    answer = httpx.post(
        gateway.url + "/anthropic/v1/messages",
        headers={"authorization": f"Bearer {secret}"},
        json={"model": MODEL, "max_tokens": 5, "messages": HELLO},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert sim.requests[-1].headers["anthropic-version"] == "2023-06-01"


def test_budget_reserves_the_worst_case_from_max_tokens(
    sim, priced, claude, new_key, usage_items, settings, dynamo
) -> None:
    # GIVEN a key with a budget, and a stream held open upstream
    sim.message_tokens, sim.event_delay = 20, 0.05
    secret, record = new_key(monthly_budget_usd=Decimal("100"))
    limits = LimitsStore(dynamo, settings.limits_table)
    month = datetime.now(UTC).strftime("%Y-%m")
    # WHEN the request is in flight
    with claude(secret, url=priced.url).messages.stream(
        model=MODEL, max_tokens=64000, messages=HELLO
    ) as stream:
        next(iter(stream))
        in_flight = limits.spend(record.key_id, month)
        final = stream.get_final_message()
    # THEN its reservation was the cost of 64000 output tokens (input estimated from the body),
    body_bytes = len(sim.requests[-1].body)
    assert in_flight["committed_usd"] == cost(body_bytes // 4, 0, 0, 64000)
    # and once billed, what is committed is exactly what was spent.
    (item,) = usage_items(record.key_id)
    assert item["output_tokens"] == final.usage.output_tokens == 20
    settled = limits.spend(record.key_id, month)
    assert settled["committed_usd"] == settled["spent_usd"] == item["cost_usd"]


def test_usage_report_shows_the_messages_surface_and_cache_writes(
    sim, priced, claude, new_key, usage_items, dynamodb
) -> None:
    sim.cached_tokens, sim.cache_write_tokens = 50, 20
    secret, record = new_key()
    claude(secret, url=priced.url).messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    (item,) = usage_items(record.key_id)
    month = datetime.now(UTC).strftime("%Y-%m")
    env = {**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint_url}
    command = [str(Path(sys.executable).parent / "mantle-gateway"), "usage", "report"]
    command += ["--month", month, "--key", record.key_id, "--format"]

    def report(fmt: str) -> str:
        done = subprocess.run(
            [*command, fmt], env=env, capture_output=True, text=True, check=True, timeout=60
        )
        return done.stdout

    (key,) = json.loads(report("json"))["keys"]
    assert key["cache_write_tokens"] == 20 and key["cached_tokens"] == 50
    (row,) = key["by_surface_and_model"]
    assert (row["api_surface"], row["model"], row["requests"]) == ("messages", MODEL, 1)
    assert (row["input_tokens"], row["cache_write_tokens"]) == (3 + 50 + 20, 20)
    assert Decimal(row["cost_usd"]) == item["cost_usd"] == cost(3, 50, 20, 8)
    header, first, *_ = report("table").splitlines()
    assert "cache_write_tokens" in header.split()
    assert "messages" in first.split() and "20" in first.split()
