"""Budget alerts, exactly once, through real parts: the live door, DynamoDB and EventBridge both
served by moto, and an EventBridge rule with the deployed stack's pattern delivering to an SQS
queue the test reads, so every event counted went through PutEvents, signed, and the rule.

GIVEN keys with monthly budgets and alert thresholds,
WHEN their spend crosses thresholds: one request at a time, from many requests on several
gateway processes at once, through a ledger write whose answer is lost and retried, and through
`usage replay` of items written or not,
THEN each (key, month, threshold) gives exactly one `Budget Threshold Reached` event, and a
threshold not reached gives none.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import httpx
import openai
import pytest

from mantle_gateway.core.alerts import DETAIL_TYPE, SOURCE
from mantle_gateway.observability import logger
from mantle_gateway.store.ledger import json_safe
from mantle_gateway.store.limits import LimitsStore
from tests.support.dynamo_faults import DynamoTap, refusing, tapped
from tests.support.serve_processes import Instance, serve_processes

COMMAND = str(Path(sys.executable).parent / "mantle-gateway")
MODEL = "openai.gpt-oss-20b"
MESSAGES: Any = [{"role": "user", "content": "budget"}]
STAGE = "test"
PATTERN = {"source": [SOURCE], "detail-type": [DETAIL_TYPE], "detail": {"stage": [STAGE]}}
"""What infra/constructs/budget_alerts.py's rule matches for a stage (tests/infra checks it)."""

Events = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def bus(dynamodb) -> Iterator[Events]:
    """A rule on moto's default bus → an SQS queue; returns a reader of one key's events."""
    options: dict[str, Any] = {"region_name": "us-east-1", "endpoint_url": dynamodb.endpoint_url}
    sqs, events = boto3.client("sqs", **options), boto3.client("events", **options)
    name = "budget-alerts-" + uuid.uuid4().hex[:8]
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(Name=name, EventPattern=json.dumps(PATTERN))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    received: list[dict[str, Any]] = []

    def read(key_id: str, count: int = 0, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The events for `key_id` so far, waiting (bounded) until there are `count`."""
        end = time.monotonic() + timeout
        while True:
            for message in sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", []):
                received.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            mine = [e for e in received if e["detail"]["key_id"] == key_id]
            if len(mine) >= count or time.monotonic() > end:
                return mine
            time.sleep(0.05)

    yield read
    events.remove_targets(Rule=name, Ids=["queue"])
    events.delete_rule(Name=name)
    sqs.delete_queue(QueueUrl=queue_url)


@pytest.fixture
def alerting(start_gateway, dynamodb):
    """A gateway that sends budget alerts to (moto's) EventBridge, as the deployed one does."""
    return start_gateway(
        budget_alert_events="eventbridge",
        events_endpoint_url=dynamodb.endpoint_url,
        stage=STAGE,
    )


Fit = Callable[[DynamoTap], None]
"""Sets a test's hooks on a gateway's DynamoDB tap."""


@pytest.fixture
def alerting_with(
    start_gateway, settings, dynamodb
) -> Callable[[Callable[[DynamoTap], None]], Any]:
    """An alerting gateway whose DynamoDB calls pass a tap that `fit` sets up."""

    def start(fit: Fit) -> Any:
        dynamo, tap = tapped(settings)
        fit(tap)
        return start_gateway(
            dynamo=dynamo,
            budget_alert_events="eventbridge",
            events_endpoint_url=dynamodb.endpoint_url,
            stage=STAGE,
        )

    return start


@pytest.fixture
def request_cost(gateway, new_key, usage_items) -> Decimal:
    """What one `chat()` costs: measured on a key without a budget."""
    secret, record = new_key()
    assert chat(gateway.url, secret).status_code == 200
    (item,) = usage_items(record.key_id)
    cost = Decimal(str(item["cost_usd"]))
    assert cost > 0
    return cost


def chat(url: str, key: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": MODEL, "messages": MESSAGES, "max_tokens": 5},
        timeout=30,
    )


def pcts(events: list[dict[str, Any]]) -> list[int]:
    return sorted(e["detail"]["threshold_pct"] for e in events)


def test_each_threshold_is_announced_once_as_the_spend_reaches_it(
    alerting, new_key, request_cost, bus, usage_items
) -> None:
    # GIVEN a key whose budget is four requests, alerted at 25, 50 and 100%
    budget = request_cost * 4
    secret, record = new_key(monthly_budget_usd=budget, alert_at=(25, 50, 100))
    client = openai.OpenAI(base_url=alerting.url + "/openai/v1", api_key=secret, max_retries=0)

    def ask() -> None:
        client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)

    # WHEN it spends a quarter, THEN one event says 25%
    ask()
    (first,) = bus(record.key_id, count=1)
    assert first["source"] == SOURCE and first["detail-type"] == DETAIL_TYPE
    month = datetime.now(UTC).strftime("%Y-%m")
    assert first["detail"] == {
        "key_id": record.key_id,
        "key_name": record.name,
        "month": month,
        "threshold_pct": 25,
        "spent_usd": str(request_cost.normalize()),
        "budget_usd": format(budget.normalize(), "f"),
        "stage": STAGE,
    }
    # WHEN it spends half, then all of it, THEN 50% and 100% are announced once each
    ask()
    assert pcts(bus(record.key_id, count=2)) == [25, 50]
    ask()
    assert pcts(bus(record.key_id, count=3, timeout=0.5)) == [25, 50]
    ask()
    assert pcts(bus(record.key_id, count=3)) == [25, 50, 100]
    # AND the budget now refuses, which announces nothing more
    with pytest.raises(openai.RateLimitError):
        ask()
    assert pcts(bus(record.key_id, count=4, timeout=0.5)) == [25, 50, 100]
    assert len(usage_items(record.key_id, count=4)) == 4


def test_a_key_without_thresholds_or_budget_is_never_announced(
    alerting, new_key, request_cost, bus
) -> None:
    silent, silent_record = new_key(monthly_budget_usd=request_cost, alert_at=())
    free, free_record = new_key()
    for key in (silent, free, free):
        assert chat(alerting.url, key).status_code == 200

    assert bus(silent_record.key_id, count=1, timeout=0.5) == []
    assert bus(free_record.key_id, count=1, timeout=0.1) == []


class LimitsReads:
    """Counts the GetItem calls a gateway's DynamoDB client makes on the limits table (the
    budget-alert read of the key's month item; admission writes, it does not read)."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.count = 0

    def __call__(self, params: dict[str, Any], request: httpx.Request) -> None:
        if params.get("TableName") == self.table:
            self.count += 1


def test_only_the_write_that_reaches_a_threshold_is_followed_by_a_read(
    alerting_with, settings, new_key, request_cost, bus, usage_items
) -> None:
    # GIVEN a gateway whose reads of the limits table are counted, and a key whose budget is
    # four requests, alerted at 50%
    reads = LimitsReads(settings.limits_table)
    door = alerting_with(lambda tap: tap.before("GetItem", reads))
    secret, record = new_key(monthly_budget_usd=request_cost * 4, alert_at=(50,))

    # WHEN it spends a quarter, THEN the usage write alone ran: it said it reached nothing
    assert chat(door.url, secret).status_code == 200
    usage_items(record.key_id, count=1)
    assert reads.count == 0
    # WHEN it spends half, THEN that write reached 50%: one read, one claim, one event
    assert chat(door.url, secret).status_code == 200
    assert pcts(bus(record.key_id, count=1)) == [50]
    assert reads.count == 1
    # WHEN it spends the rest, THEN nothing is left to announce and nothing more is read
    for _ in range(2):
        assert chat(door.url, secret).status_code == 200
    usage_items(record.key_id, count=4)
    assert reads.count == 1
    assert pcts(bus(record.key_id, count=2, timeout=0.5)) == [50]


class LoseFirstTransactAnswer:
    """The first TransactWriteItems commits in DynamoDB, then its answer is lost (a read
    timeout), as a network fault would: the ledger retries a write that already landed."""

    def __init__(self) -> None:
        self.lost = 0

    def __call__(self, params: dict[str, Any], response: httpx.Response) -> None:
        if self.lost == 0:
            self.lost += 1
            raise httpx.ReadTimeout("injected: the answer was lost")


def test_a_ledger_retry_of_a_write_that_had_landed_still_announces_once(
    alerting_with, settings, dynamo, new_key, request_cost, bus, usage_items
) -> None:
    # GIVEN a gateway whose first ledger transaction lands but is answered by a timeout
    fault = LoseFirstTransactAnswer()
    door = alerting_with(lambda tap: tap.after("TransactWriteItems", fault))
    secret, record = new_key(monthly_budget_usd=request_cost * 2, alert_at=(50,))

    # WHEN one request spends half the budget
    assert chat(door.url, secret).status_code == 200

    # THEN the retry found the item written, and the threshold was announced once
    assert pcts(bus(record.key_id, count=1)) == [50]
    assert fault.lost == 1
    (item,) = usage_items(record.key_id)
    assert pcts(bus(record.key_id, count=2, timeout=0.5)) == [50]
    month = datetime.now(UTC).strftime("%Y-%m")
    spend = LimitsStore(dynamo, settings.limits_table).spend(record.key_id, month)
    assert spend["spent_usd"] == Decimal(str(item["cost_usd"])) == request_cost


def replay(env: dict[str, str], log_file: Path) -> dict[str, Any]:
    done = subprocess.run(
        [COMMAND, "usage", "replay", str(log_file)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


@pytest.fixture
def replay_env(dynamodb, settings) -> dict[str, str]:
    """`usage replay` as an operator runs it against a stage: the function's alert settings."""
    return {
        **os.environ,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint_url,
        "KEYS_TABLE": settings.keys_table,
        "USAGE_TABLE": settings.usage_table,
        "LIMITS_TABLE": settings.limits_table,
        "BUDGET_ALERT_EVENTS": "eventbridge",
        "AWS_ENDPOINT_URL_EVENTS": dynamodb.endpoint_url,
        "GATEWAY_STAGE": STAGE,
    }


def test_replaying_an_item_already_written_announces_nothing_again(
    alerting, new_key, request_cost, bus, usage_items, replay_env, tmp_path
) -> None:
    # GIVEN a request that crossed 50% and was announced
    secret, record = new_key(monthly_budget_usd=request_cost * 2, alert_at=(50,))
    assert chat(alerting.url, secret).status_code == 200
    assert pcts(bus(record.key_id, count=1)) == [50]
    # AND a usage_write_failed line for that same item (its answer was lost after it landed)
    (item,) = usage_items(record.key_id)
    log_file = tmp_path / "lost.log"
    line = {"message": "usage_write_failed", "usage_item": json_safe(item), "reserved_usd": "0"}
    log_file.write_text("2026-11-30T12:00:00Z " + json.dumps(line) + "\n")

    # WHEN the operator replays it, THEN it is already there and nothing is announced again
    assert replay(replay_env, log_file) == {"found": 1, "already_present": 1}
    assert pcts(bus(record.key_id, count=2, timeout=0.5)) == [50]


def test_replaying_a_write_that_failed_announces_its_crossing_once(
    start_gateway, settings, dynamodb, new_key, request_cost, bus, replay_env, tmp_path
) -> None:
    # GIVEN a gateway whose usage writes DynamoDB refuses, logging to a file
    failing, tap = tapped(settings)
    tap.before("TransactWriteItems", refusing())
    door = start_gateway(
        dynamo=failing,
        budget_alert_events="eventbridge",
        events_endpoint_url=dynamodb.endpoint_url,
        stage=STAGE,
    )
    log_file = tmp_path / "gateway.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    secret, record = new_key(monthly_budget_usd=request_cost * 2, alert_at=(50,))
    try:
        # WHEN a request that would cross 50% is served but its usage write fails
        assert chat(door.url, secret).status_code == 200
        end = time.monotonic() + 10
        while "usage_write_failed" not in (log_file.read_text() if log_file.exists() else ""):
            assert time.monotonic() < end, "no usage_write_failed line was logged"
            time.sleep(0.05)
    finally:
        logger.removeHandler(handler)
    # THEN nothing is announced: the spend is not in the ledger yet
    assert bus(record.key_id, count=1, timeout=0.5) == []

    # WHEN the operator replays the log twice
    first, second = replay(replay_env, log_file), replay(replay_env, log_file)

    # THEN the first replay writes the item and announces 50% once; the second does neither
    assert first == {"found": 1, "written": 1, "budget_alerts": 1}
    assert second == {"found": 1, "already_present": 1}
    (event,) = bus(record.key_id, count=2, timeout=1.0)
    assert event["detail"]["threshold_pct"] == 50 and event["detail"]["stage"] == STAGE


INSTANCES, REQUESTS = 3, 30


@pytest.fixture
def instances(dynamodb) -> Iterator[list[Instance]]:
    """Three `serve` processes on one DynamoDB, each sending alerts to (moto's) EventBridge."""
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint_url,
        "BUDGET_ALERT_EVENTS": "eventbridge",
        "AWS_ENDPOINT_URL_EVENTS": dynamodb.endpoint_url,
        "GATEWAY_STAGE": STAGE,
    }
    with serve_processes(env, INSTANCES) as running:
        yield running


@pytest.mark.slow
def test_many_processes_racing_over_thresholds_announce_each_exactly_once(
    instances, new_key, request_cost, bus, usage_items, settings, dynamo
) -> None:
    # GIVEN three gateway processes, warm, and a key whose thresholds are 10 and 20 requests
    # away (1% and 2% of a budget of 1000 requests; 5% is never reached)
    warm, _ = new_key()
    for url, _ in instances:
        assert chat(url, warm).status_code == 200
    budget = request_cost * 1000
    secret, record = new_key(monthly_budget_usd=budget, alert_at=(1, 2, 5))

    # WHEN thirty requests arrive at once, spread over the processes
    with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
        answers = list(
            pool.map(lambda n: chat(instances[n % INSTANCES][0], secret), range(REQUESTS))
        )

    # THEN every request was served and billed, and 1% and 2% were each announced once
    assert Counter(a.status_code for a in answers) == {200: REQUESTS}
    items = usage_items(record.key_id, count=REQUESTS, timeout=20)
    assert len(items) == REQUESTS
    month = datetime.now(UTC).strftime("%Y-%m")
    spent = LimitsStore(dynamo, settings.limits_table).spend(record.key_id, month)["spent_usd"]
    assert spent == request_cost * REQUESTS
    assert pcts(bus(record.key_id, count=2)) == [1, 2]
    assert pcts(bus(record.key_id, count=3, timeout=1.0)) == [1, 2]
    # AND the processes' own log lines agree: two announcements between them, not more
    for _, process in instances:
        process.terminate()
    logged = []
    for _, process in instances:
        output, _ = process.communicate(timeout=10)
        logged += [
            json.loads(line)["detail"]
            for line in output.splitlines()
            if '"budget_threshold_reached"' in line
        ]
    assert sorted(d["threshold_pct"] for d in logged if d["key_id"] == record.key_id) == [1, 2]
