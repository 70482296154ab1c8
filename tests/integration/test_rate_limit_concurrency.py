"""Rate limits hold across instances: three gateway processes share one DynamoDB, and of N > L
requests fired at them all at once exactly L are admitted; the rest get 429 with the headers.
Tokens per minute hold too: each request reserves its worst case when it is admitted, so a burst
overshoots tpm by at most the one request whose reservation crossed it."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support.serve_processes import serve_processes

LIMIT, REQUESTS, INSTANCES = 10, 30, 3
TPM, MAX_TOKENS = 100, 50


@pytest.fixture
def instances(dynamodb):
    env = {**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint_url}
    with serve_processes(env, INSTANCES) as running:
        yield [url for url, _ in running]


def test_exactly_limit_admitted_across_instances(instances, new_key) -> None:
    warm, _ = new_key()
    for url in instances:  # warm each instance's pools so the burst really races
        assert _chat(url, warm).status_code == 200
    key, _ = new_key(rpm=LIMIT)
    if datetime.now(UTC).second >= 40:  # keep the burst inside one rate window
        time.sleep(61 - datetime.now(UTC).second)

    with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
        answers = list(pool.map(lambda n: _chat(instances[n % INSTANCES], key), range(REQUESTS)))
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: LIMIT, 429: REQUESTS - LIMIT}
    for refused in (a for a in answers if a.status_code == 429):
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert refused.headers["x-ratelimit-limit-requests"] == str(LIMIT)
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        assert int(refused.headers["retry-after"]) >= 1


def test_tpm_overshoots_by_at_most_one_request_across_instances(
    instances, new_key, usage_items
) -> None:
    warm, _ = new_key()
    for url in instances:
        assert _chat(url, warm).status_code == 200
    key, record = new_key(tpm=TPM)
    if datetime.now(UTC).second >= 40:  # keep the burst and its settling inside one window
        time.sleep(61 - datetime.now(UTC).second)
    minute = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")

    with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
        answers = list(pool.map(lambda n: _stream(instances[n % INSTANCES], key), range(REQUESTS)))
    admitted = [a for a in answers if a["status"] == 200]
    assert {a["status"] for a in answers} <= {200, 429}
    items = usage_items(record.key_id, count=len(admitted), timeout=20)
    assert len(items) == len(admitted)
    assert {str(i["timestamp"])[:16] for i in items} == {minute}, "one rate window"
    # The worst case each request reserved: its body's bytes / 4 in, max_tokens out.
    worst = max(1, len(_stream_body()) // 4) + MAX_TOKENS
    used = sum(int(i["total_tokens"]) for i in items)
    assert used <= TPM + worst, f"{len(items)} requests used {used} tokens in one minute"
    assert 1 < len(admitted) < REQUESTS
    # x-ratelimit-remaining-tokens counts every reservation: what was left after this one.
    remaining = sorted(int(a["remaining"]) for a in admitted)
    assert all(0 <= r <= TPM - worst for r in remaining)
    for refused in (a for a in answers if a["status"] == 429):
        assert refused["code"] == "rate_limit_exceeded"
        assert refused["remaining"] == "0"


def _stream_body() -> bytes:
    return json.dumps(
        {
            "model": "openai.gpt-oss-20b",
            "messages": [{"role": "user", "content": "x"}],
            "max_tokens": MAX_TOKENS,
            "stream": True,
        }
    ).encode()


def _stream(url: str, key: str) -> dict[str, Any]:
    """One streamed chat read to its end: status, remaining tokens header, error code."""
    headers = {"x-api-key": key, "content-type": "application/json"}
    with httpx.stream(
        "POST", url + "/v1/chat/completions", headers=headers, content=_stream_body(), timeout=30
    ) as answer:
        body = answer.read()
    return {
        "status": answer.status_code,
        "remaining": answer.headers.get("x-ratelimit-remaining-tokens"),
        "code": json.loads(body)["error"]["code"] if answer.status_code != 200 else None,
    }


def _chat(url: str, key: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        headers={"x-api-key": key},
        json={
            "model": "openai.gpt-oss-20b",
            "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 1,
        },
        timeout=30,
    )
