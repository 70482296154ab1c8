"""The local door answers the next request without waiting for the last one's usage write, and
a shutdown loses no usage: it writes what is queued, and logs what it cannot for `usage replay`.

DynamoDB is held, not slowed: its usage writes wait until the test releases them, so each test
asserts the order of events (answered while the write was held), never a duration.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from mantle_gateway import simulator, wiring
from mantle_gateway.doors.local import serve
from mantle_gateway.store.dynamo import Dynamo
from mantle_gateway.store.limits import LimitsStore
from mantle_gateway.upstream.signing import static_credentials
from tests.support.dynamo_faults import tapped
from tests.support.paused_dynamodb import PausedDynamoDB

COMMAND = str(Path(sys.executable).parent / "mantle-gateway")
MODEL = "openai.gpt-oss-120b"
MESSAGES: Any = [{"role": "user", "content": "hi"}]


def test_the_next_request_is_answered_while_the_last_usage_write_is_held(
    settings, new_key, usage_items
) -> None:
    # GIVEN a local door whose DynamoDB calls hold every usage transaction until released
    dynamo, tap = tapped(settings)
    held, release = threading.Semaphore(0), threading.Event()

    def hold(params: dict[str, Any], request: httpx.Request) -> None:
        held.release()
        release.wait(60)

    tap.before("TransactWriteItems", hold)
    gateway, usage_writer = wiring.build_local(
        settings,
        credentials=static_credentials(
            simulator.SIMULATOR_ACCESS_KEY, simulator.SIMULATOR_SECRET_KEY
        ),
        dynamo=dynamo,
    )
    door = serve(gateway, "127.0.0.1", 0, settings.max_request_bytes)
    door.start_background()
    key, record = new_key()
    # (a door that wrote usage on the connection would keep the second request past this)
    client = openai.OpenAI(base_url=door.url + "/v1", api_key=key, max_retries=0, timeout=10)
    try:
        # WHEN one keep-alive client sends a request, and its usage write starts and is held
        first = client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert held.acquire(timeout=10), "the first usage write never started"

        # THEN its next request on the same connection is answered, the write still held
        second = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in second if c.choices)
        assert not release.is_set()
        assert usage_items(record.key_id, timeout=0.1) == []

        # AND once DynamoDB answers, both usage items are written
        release.set()
        assert usage_writer.wait_idle(10)
        items = usage_items(record.key_id, count=2)
        assert {item["stream"] for item in items} == {False, True}
        assert first.choices[0].message.content
    finally:
        release.set()
        client.close()
        door.shutdown()
        door.server_close()


# -- `mantle-gateway serve`, stopped with SIGTERM ------------------------------------------------


@pytest.fixture
def paused(dynamodb):
    with PausedDynamoDB(dynamodb.endpoint_url) as proxy:
        yield proxy


def start_serve(settings, dynamodb_url: str, *options: str) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url,
        "KEYS_TABLE": settings.keys_table,
        "USAGE_TABLE": settings.usage_table,
        "LIMITS_TABLE": settings.limits_table,
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    process = subprocess.Popen(
        [COMMAND, "serve", "--upstream", "simulator", "--port", "0", *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    end = time.monotonic() + 60
    while time.monotonic() < end:
        line = process.stdout.readline()
        if "listening on " in line:
            return process, line.split("listening on ")[1].split()[0]
        if not line:
            break
    process.kill()
    raise AssertionError("serve did not start")


def chat(http: httpx.Client, url: str, key: str) -> None:
    answer = http.post(
        url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": MODEL, "messages": MESSAGES},
    )
    assert answer.status_code == 200, answer.text


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM, then everything the process printed until it exited (code 0)."""
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    return output


def test_sigterm_writes_every_queued_usage_item_before_exiting(
    settings, paused, new_key, usage_items
) -> None:
    # GIVEN serve, whose usage writes DynamoDB holds, and three answered requests
    key, record = new_key()
    process, url = start_serve(settings, paused.url, "--drain-timeout", "30")
    try:
        with httpx.Client(timeout=30) as http:
            for _ in range(3):
                chat(http, url, key)
        assert paused.wait_held(1)
        assert usage_items(record.key_id, timeout=0.1) == []

        # WHEN it is told to stop, and only then DynamoDB answers
        process.send_signal(signal.SIGTERM)
        paused.release()
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    # THEN it exited cleanly after writing all three, and logged none as unwritten
    assert process.returncode == 0, output
    assert len(usage_items(record.key_id, count=3)) == 3
    assert "usage_write_failed" not in output


def test_usage_not_written_in_the_drain_time_is_logged_and_replayed(
    settings, dynamodb, paused, new_key, usage_items, tmp_path
) -> None:
    # GIVEN serve, whose usage writes DynamoDB holds for good, and two answered requests
    key, record = new_key(monthly_budget_usd=Decimal("10"))
    process, url = start_serve(settings, paused.url, "--drain-timeout", "0.5")
    try:
        with httpx.Client(timeout=30) as http:
            chat(http, url, key)
            chat(http, url, key)
        assert paused.wait_held(2)
        # WHEN it is stopped, THEN it still exits cleanly within its drain time
        output = stop(process)
    finally:
        if process.poll() is None:
            process.kill()
    # AND each unwritten item is a usage_write_failed line, and nothing reached DynamoDB
    log = tmp_path / "serve.log"
    log.write_text(output)
    lines = [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and "usage_write_failed" in line
    ]
    assert sorted(line["usage_item"]["key_id"] for line in lines) == [record.key_id] * 2
    assert "usage replay" in output
    assert usage_items(record.key_id, timeout=0.1) == []

    # WHEN the log is replayed, THEN both items are written, the spend counter matches them
    env = {**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint_url}
    replayed = subprocess.run(
        [COMMAND, "usage", "replay", str(log)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(replayed.stdout) == {"found": 2, "written": 2}
    items = usage_items(record.key_id, count=2)
    assert len(items) == 2
    month = datetime.now(UTC).strftime("%Y-%m")
    counters = LimitsStore(
        Dynamo(region="us-east-1", endpoint_url=dynamodb.endpoint_url), settings.limits_table
    ).spend(record.key_id, month)
    assert counters["spent_usd"] == sum(item["cost_usd"] for item in items)
    assert counters["committed_usd"] == counters["spent_usd"], "the reservations were settled"
    assert counters["requests"] == 2
