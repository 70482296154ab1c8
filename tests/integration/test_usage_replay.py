"""Lost-nothing writes: when DynamoDB refuses the usage write, the client still gets its answer,
the whole item lands in one structured log line, and `usage replay` writes it back exactly once."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx

from mantle_gateway.observability import logger
from mantle_gateway.store.dynamo import Dynamo
from mantle_gateway.store.ledger import json_safe
from mantle_gateway.store.limits import LimitsStore, holds_in
from mantle_gateway.usage import TokenCounts, UsageRecord
from tests.support.dynamo_faults import refusing, tapped

COMMAND = str(Path(sys.executable).parent / "mantle-gateway")


def test_failed_usage_write_is_logged_then_replayed_once(
    start_gateway, settings, new_key, usage_items, dynamodb, tmp_path
) -> None:
    # GIVEN a gateway whose usage writes DynamoDB refuses, with its log going to a file
    failing, tap = tapped(settings)
    tap.before("TransactWriteItems", refusing())
    door = start_gateway(dynamo=failing)
    log_file = tmp_path / "gateway.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    key, record = new_key(monthly_budget_usd=Decimal("10"))
    try:
        # WHEN a request is served
        answer = httpx.post(
            door.url + "/v1/chat/completions",
            headers={"x-api-key": key},
            json={"model": "openai.gpt-oss-120b", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        # THEN the client still has its answer
        assert answer.status_code == 200
        assert answer.json()["choices"][0]["message"]["content"]
        lines = _wait_for_failed_write(log_file)
    finally:
        logger.removeHandler(handler)
    # AND the log line holds the whole item, and no secret
    (line,) = lines
    logged = json.loads(line)
    assert logged["usage_item"]["key_id"] == record.key_id
    assert logged["usage_item"]["output_tokens"] == 8
    # AND the reservation it settles, named by its hold
    assert logged["reservation"]["hold"] == logged["usage_item"]["request_id"]
    assert Decimal(logged["reservation"]["usd"]) == Decimal(logged["reserved_usd"]) > 0
    assert key not in line
    assert usage_items(record.key_id, timeout=0.2) == []

    # WHEN the log is replayed twice, THEN the item is written once and the spend matches it
    env = {**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint_url}
    outcomes = [
        json.loads(
            subprocess.run(
                [COMMAND, "usage", "replay", str(log_file)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout
        )
        for _ in range(2)
    ]
    assert outcomes == [{"found": 1, "written": 1}, {"found": 1, "already_present": 1}]
    (item,) = usage_items(record.key_id)
    assert item["request_id"] == logged["usage_item"]["request_id"]
    month = datetime.now(UTC).strftime("%Y-%m")
    limits = LimitsStore(
        Dynamo(region="us-east-1", endpoint_url=dynamodb.endpoint_url), settings.limits_table
    )
    counters = limits.spend(record.key_id, month)
    assert counters["spent_usd"] == item["cost_usd"]
    assert counters["committed_usd"] == counters["spent_usd"], "the reservation was settled"
    assert counters["requests"] == 1
    assert holds_in(limits.item(record.key_id, month)) == [], "and its hold removed"


def _wait_for_failed_write(log_file: Path) -> list[str]:
    import time

    end = time.monotonic() + 10
    while time.monotonic() < end:
        text = log_file.read_text() if log_file.exists() else ""
        lines = [line for line in text.splitlines() if "usage_write_failed" in line]
        if lines:
            return lines
        time.sleep(0.05)
    raise AssertionError("no usage_write_failed line was logged")


def test_replay_skips_and_reports_bad_lines_and_writes_every_good_one(
    settings, new_key, usage_items, dynamodb, tmp_path
) -> None:
    # GIVEN a log mixing two failed writes with garbage, a line cut short and another message
    _, record = new_key()
    month = datetime.now(UTC).strftime("%Y-%m")

    def failed(n: int) -> str:
        item = UsageRecord(
            request_id=f"replay-{record.key_id}-{n}",
            timestamp=f"{month}-01T00:00:0{n}.000000Z",
            key_id=record.key_id,
            model="openai.gpt-oss-120b",
            tokens=TokenCounts(input=3, output=5),
            cost_usd=Decimal("0.0021"),
            status="ok",
            latency_ms=12,
            door="local",
            stream=False,
        ).item()
        return json.dumps(
            {"level": "ERROR", "message": "usage_write_failed", "usage_item": json_safe(item)}
        )

    log_file = tmp_path / "mixed.log"
    log_file.write_text(
        "\n".join(
            [
                failed(1),
                "%% not a log line at all \x00",
                failed(2)[:90],  # the writer died mid-line
                json.dumps({"level": "INFO", "message": "request served", "status": 200}),
                failed(3),
            ]
        )
        + "\n",
        encoding="utf-8",
    )

    # WHEN it is replayed
    done = subprocess.run(
        [COMMAND, "usage", "replay", str(log_file)],
        env={**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint_url},
        capture_output=True,
        text=True,
        timeout=60,
    )

    # THEN both good lines are written, the cut one is reported by line number, and the exit
    # status says a line was skipped
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout) == {
        "found": 2,
        "written": 2,
        "skipped": 1,
        "skipped_lines": [f"{log_file}:3"],
    }
    assert done.stderr.strip() == f"usage replay: skipped {log_file}:3: truncated or invalid JSON"
    items = usage_items(record.key_id, count=2)
    assert sorted(i["request_id"] for i in items) == [
        f"replay-{record.key_id}-1",
        f"replay-{record.key_id}-3",
    ]
    spend = LimitsStore(
        Dynamo(region="us-east-1", endpoint_url=dynamodb.endpoint_url), settings.limits_table
    ).spend(record.key_id, month)
    assert spend["spent_usd"] == Decimal("0.0042")
