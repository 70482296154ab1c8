"""Rate limits hold across instances: three gateway processes share one DynamoDB, and of N > L
requests fired at them all at once exactly L are admitted; the rest get 429 with the headers."""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest

from tests.support.serve_processes import serve_processes

LIMIT, REQUESTS, INSTANCES = 10, 30, 3


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
