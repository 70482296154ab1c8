"""Rate limits hold across instances: three gateway processes share one DynamoDB, and of N > L
requests fired at them all at once exactly L are admitted; the rest get 429 with the headers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

COMMAND = str(Path(sys.executable).parent / "mantle-gateway")
LIMIT, REQUESTS, INSTANCES = 10, 30, 3


@pytest.fixture
def instances(dynamodb):
    env = {**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint_url}
    processes = [
        subprocess.Popen(
            [COMMAND, "serve", "--upstream", "simulator", "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(INSTANCES)
    ]
    try:
        yield [_url(p) for p in processes]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


def _url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    end = time.monotonic() + 30
    while time.monotonic() < end:
        line = process.stdout.readline()
        if "listening on " in line:
            return line.split("listening on ")[1].split()[0]
    raise AssertionError("an instance did not start")


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
