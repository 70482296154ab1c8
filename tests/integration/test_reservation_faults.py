"""No reservation outlives its request by more than a bounded time, whatever fails: an admission
write that applied although the gateway saw a DynamoDB error, one that applied after the gateway
gave up, a gateway process killed mid-answer. The local door has no deadline, so its holds expire
`RESERVATION_EXPIRY_SECONDS` (900 by default) after the request started; the tests move the
gateway's clock past that instead of waiting.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from mantle_gateway import simulator
from mantle_gateway.settings import Settings
from mantle_gateway.store.dynamo import Dynamo
from mantle_gateway.store.limits import LimitsStore, holds_in
from mantle_gateway.store.wire import MAX_ATTEMPTS
from tests.support.dynamo_faults import tapped

MODEL = "openai.gpt-oss-120b"
EXPIRY = 900
COMMAND = str(Path(sys.executable).parent / "mantle-gateway")


def chat(url: str, key: str, **body: object) -> httpx.Response:
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}
    return httpx.post(
        url + "/v1/chat/completions", headers={"x-api-key": key}, json=payload | body, timeout=10
    )


def is_admission(params: dict[str, Any]) -> bool:
    """The admission UpdateItem that writes a hold (not a settle, release or sweep)."""
    return "#hold = :hold" in params.get("UpdateExpression", "")


def hold_of(params: dict[str, Any]) -> str:
    """The hold an admission writes (one per request: every attempt of it names the same)."""
    return str(params.get("ExpressionAttributeNames", {}).get("#hold", ""))


def timeout() -> httpx.ReadTimeout:
    return httpx.ReadTimeout("injected: no answer in time")


class Counters:
    def __init__(self, dynamo: Dynamo, settings: Settings, key_id: str, month: str) -> None:
        self._limits = LimitsStore(dynamo, settings.limits_table)
        self._key_id = key_id
        self._month = month

    def now(self) -> dict[str, Any]:
        item = self._limits.item(self._key_id, self._month)
        return {
            "committed": Decimal(item.get("committed_usd", 0)),
            "spent": Decimal(item.get("spent_usd", 0)),
            "holds": len(holds_in(item)),
        }

    def wait(self, done: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
        """The counters once `done` holds for them (the gateway works off the client's path)."""
        end = time.monotonic() + timeout
        while True:
            state = self.now()
            if done(state) or time.monotonic() > end:
                return state
            time.sleep(0.02)


def settled(state: dict[str, Any]) -> bool:
    return state["committed"] == state["spent"] and state["holds"] == 0


def test_admission_applied_but_seen_as_an_error_is_given_back(
    start_gateway, settings, new_key, sim, usage_items, dynamo
) -> None:
    # GIVEN a DynamoDB whose answers to one admission are lost after the write applied (to each
    # of its attempts: the first applied, the retries found its hold)
    lossy, tap = tapped(settings)
    lost: list[str] = []

    def lose(params: dict[str, Any], response: httpx.Response) -> None:
        if is_admission(params) and (not lost or lost[0] == hold_of(params)):
            lost.append(hold_of(params))
            raise timeout()

    tap.after("UpdateItem", lose)
    door = start_gateway(dynamo=lossy)
    key, record = new_key(monthly_budget_usd=Decimal("5"))
    month = datetime.now(UTC).strftime("%Y-%m")
    counters = Counters(dynamo, settings, record.key_id, month)

    # WHEN the client is told the limit store is unavailable
    refused = chat(door.url, key)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "service_unavailable"
    assert len(lost) == MAX_ATTEMPTS and sim.requests == [], "each attempt's answer was lost"
    # THEN the hold the write left is given back off the client's path
    assert settled(counters.wait(settled))
    assert counters.now()["committed"] == 0

    # AND the key works as before, its ledger exact
    assert chat(door.url, key).status_code == 200
    (item,) = usage_items(record.key_id)
    state = counters.wait(settled)
    assert settled(state) and state["spent"] == item["cost_usd"]


def test_admission_that_applies_after_the_gateway_gave_up_expires(
    start_gateway, settings, new_key, sim, usage_items, dynamo
) -> None:
    # GIVEN a gateway whose clock we move, and a key whose budget one reservation fills
    now = [datetime(2026, 11, 10, 12, 0, 5, tzinfo=UTC).timestamp()]
    late, tap = tapped(settings)
    held: list[dict[str, Any]] = []
    releases: list[bool] = []

    def delay(params: dict[str, Any], request: httpx.Request) -> None:
        if is_admission(params) and (not held or hold_of(held[0]) == hold_of(params)):
            held[:1] = [copy.deepcopy(params)]
            raise timeout()  # every attempt is still on its way; the gateway gives up

    def released(params: dict[str, Any], response: httpx.Response) -> None:
        if "REMOVE #hold" in params.get("UpdateExpression", ""):
            releases.append(True)

    tap.before("UpdateItem", delay)
    tap.after("UpdateItem", released)
    door = start_gateway(dynamo=late, clock=lambda: now[0])
    key, record = new_key(monthly_budget_usd=Decimal("0.000001"))
    counters = Counters(dynamo, settings, record.key_id, "2026-11")
    assert chat(door.url, key).status_code == 503
    # WHEN the off-path release has found nothing to give back, and only then the write lands
    end = time.monotonic() + 10
    while not releases and time.monotonic() < end:
        time.sleep(0.02)
    assert releases, "the gateway gave the unknown admission's hold back"
    assert counters.now() == {"committed": 0, "spent": 0, "holds": 0}
    dynamo.client.update_item(**held[0])
    stuck = counters.now()
    assert stuck["holds"] == 1 and stuck["committed"] > Decimal("0.000001")

    # THEN until the hold expires the budget counts it (a bounded overshoot of safety)
    assert chat(door.url, key).json()["error"]["code"] == "budget_exceeded"
    # AND once it expired, the next request is decided without it: admitted, not refused
    now[0] += EXPIRY + 1
    assert chat(door.url, key).status_code == 200
    assert len(sim.requests) == 1
    (item,) = usage_items(record.key_id, month="2026-11")
    state = counters.wait(settled)
    assert settled(state)
    assert state["spent"] == item["cost_usd"]


def test_a_settle_after_the_sweep_adds_the_full_cost_once(
    start_gateway, settings, new_key, sim, usage_items, dynamo
) -> None:
    # GIVEN a stream still running when its hold expires
    now = [datetime(2026, 11, 10, 13, 0, 5, tzinfo=UTC).timestamp()]
    door = start_gateway(clock=lambda: now[0])
    key, record = new_key(monthly_budget_usd=Decimal("5"))
    counters = Counters(dynamo, settings, record.key_id, "2026-11")
    sim.inject(simulator.SlowStream(event_delay=0.2))
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream(
        "POST",
        door.url + "/v1/chat/completions",
        headers={"x-api-key": key},
        json=payload | {"max_tokens": 400},
        timeout=10,
    ) as slow:
        first = next(slow.iter_raw())
        assert first.startswith(b"data: ")
        assert counters.now()["holds"] == 1
        # WHEN another request, after the expiry, sees that hold and has it swept
        now[0] += EXPIRY + 1
        assert chat(door.url, key).status_code == 200
        state = counters.wait(lambda s: s["holds"] == 0)
        assert state["holds"] == 0, "the expired hold was swept"
    # AND the stream then ends (the client leaves) and is billed
    items = usage_items(record.key_id, count=2, month="2026-11")
    assert len(items) == 2
    assert {i["status"] for i in items} == {"ok", "incomplete"}
    # THEN its settle found no hold and committed its full cost: nothing was released twice
    state = counters.wait(settled)
    assert settled(state)
    assert state["spent"] == sum((Decimal(str(i["cost_usd"])) for i in items), Decimal(0))


def test_a_background_response_keeps_its_hold_until_billed_or_expired(
    start_gateway, settings, new_key, usage_items, dynamo
) -> None:
    now = [datetime(2026, 11, 10, 14, 0, 5, tzinfo=UTC).timestamp()]
    door = start_gateway(clock=lambda: now[0])
    key, record = new_key(monthly_budget_usd=Decimal("5"))
    counters = Counters(dynamo, settings, record.key_id, "2026-11")
    headers = {"x-api-key": key}

    def queue_one() -> str:
        body = {"model": MODEL, "input": "later", "background": True, "max_output_tokens": 6}
        queued = httpx.post(door.url + "/openai/v1/responses", headers=headers, json=body)
        assert queued.json()["status"] == "queued"
        return str(queued.json()["id"])

    def read(response_id: str) -> None:
        answer = httpx.get(door.url + f"/openai/v1/responses/{response_id}", headers=headers)
        assert answer.json()["status"] == "completed"

    # GIVEN a queued background response: its reservation is held while it runs
    billed_in_time = queue_one()
    assert counters.now()["holds"] == 1
    # WHEN its owner reads it finished, THEN the bill settles that hold
    read(billed_in_time)
    assert len(usage_items(record.key_id, month="2026-11")) == 1
    assert settled(counters.wait(settled))

    # GIVEN one whose owner reads it only after its hold expired (and was swept)
    billed_late = queue_one()
    now[0] += EXPIRY + 1
    assert chat(door.url, key).status_code == 200
    usage_items(record.key_id, count=2, month="2026-11")
    assert counters.wait(lambda s: s["holds"] == 0)["holds"] == 0
    # WHEN it is billed, THEN its full cost is committed, once
    read(billed_late)
    read(billed_late)
    items = usage_items(record.key_id, count=3, month="2026-11")
    assert len(items) == 3
    state = counters.wait(settled)
    assert settled(state)
    assert state["spent"] == sum((Decimal(str(i["cost_usd"])) for i in items), Decimal(0))


@pytest.fixture
def doomed_gateway(dynamodb, sim) -> Any:
    """A gateway in its own process (same DynamoDB, same simulator) that the test can kill."""
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint_url,
        "MANTLE_ENDPOINT_URL": sim.url,
        "AWS_ACCESS_KEY_ID": simulator.SIMULATOR_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": simulator.SIMULATOR_SECRET_KEY,
    }
    process = subprocess.Popen(
        [COMMAND, "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = ""
        end = time.monotonic() + 30
        while not url and time.monotonic() < end:
            line = process.stdout.readline()
            if "listening on " in line:
                url = line.split("listening on ")[1].split()[0]
        assert url, "the gateway process did not start"
        yield process, url
    finally:
        process.kill()
        process.wait(timeout=10)


def test_a_process_killed_mid_answer_leaves_no_reservation_past_the_bound(
    doomed_gateway, start_gateway, settings, new_key, sim, usage_items, dynamo
) -> None:
    started = datetime.now(UTC)
    if (started + timedelta(seconds=EXPIRY + 60)).month != started.month:
        pytest.skip("the bound would cross into next month's item")
    process, url = doomed_gateway
    key, record = new_key(monthly_budget_usd=Decimal("5"))
    month = started.strftime("%Y-%m")
    counters = Counters(dynamo, settings, record.key_id, month)
    # GIVEN a gateway process that dies while it streams an answer (it never settles)
    sim.inject(simulator.SlowStream(event_delay=0.2))
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    received = threading.Event()

    def read_until_killed() -> None:
        try:
            with httpx.stream(
                "POST",
                url + "/v1/chat/completions",
                headers={"x-api-key": key},
                json=payload | {"max_tokens": 400},
                timeout=10,
            ) as answer:
                for _ in answer.iter_raw():
                    received.set()
        except httpx.HTTPError:
            pass

    reader = threading.Thread(target=read_until_killed)
    reader.start()
    assert received.wait(10)
    process.kill()
    process.wait(timeout=10)
    reader.join(10)
    stuck = counters.now()
    assert stuck["holds"] == 1 and stuck["committed"] > stuck["spent"] == 0

    # WHEN a gateway serves the key after the bound
    later = start_gateway(clock=lambda: time.time() + EXPIRY + 1)
    assert chat(later.url, key).status_code == 200
    # THEN committed spend is the real spend again, and the items add up to it
    (item,) = usage_items(record.key_id)
    state = counters.wait(settled)
    assert settled(state)
    assert state["spent"] == item["cost_usd"]
