"""The ledger finance trusts: after a few hundred mixed requests, for every key the sum of the
usage items' cost equals the spend counter exactly, no budget reservation is left behind, and
the CSV report says the same."""

from __future__ import annotations

import csv
import io
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx

from mantle_gateway import simulator
from mantle_gateway.store.limits import LimitsStore

KINDS = (
    "chat",
    "chat_stream",
    "responses",
    "responses_stream",
    "upstream_error",
    "drop",
    "disconnect",
)


def one_request(url: str, key: str, kind: str, sim: simulator.Simulator, n: int) -> bool:
    """Send one request of this kind; True when it is billable (a usage item must appear)."""
    model = "openai.gpt-oss-120b" if n % 2 else "openai.gpt-oss-20b"
    headers = {"x-api-key": key}
    if kind.startswith("chat") or kind in ("upstream_error", "drop", "disconnect"):
        path = "/v1/chat/completions"
        body: dict[str, object] = {
            "model": model,
            "messages": [{"role": "user", "content": f"n {n}"}],
        }
    else:
        path = "/openai/v1/responses"
        body = {"model": model, "input": f"request {n}"}
    body["max_tokens" if "chat" in path else "max_output_tokens"] = 1 + n % 13
    body["stream"] = kind.endswith("stream") or kind in ("drop", "disconnect")
    if kind == "upstream_error":
        sim.inject(simulator.ErrorAnswer(status=500, model=model, path="/chat/completions"))
    if kind == "drop":
        sim.inject(simulator.DropMidStream(after_events=2, model=model, path="/chat/completions"))
    if kind == "disconnect":
        body["max_tokens"] = 400
        with httpx.stream("POST", url + path, headers=headers, json=body, timeout=10) as answer:
            next(answer.iter_raw())
            return answer.status_code == 200  # a fault meant for another request may land here
    answer = httpx.post(url + path, headers=headers, json=body, timeout=10)
    # Faults go to whichever concurrent request of that model comes first: a 500 (error answer)
    # or a 502 (connection dropped before any answer) may land on any chat request.
    assert answer.status_code in (200, 500, 502), answer.text
    return answer.status_code == 200


def test_sum_of_usage_equals_spend_counter_and_report(
    gateway, new_key, sim, usage_items, settings, dynamo, dynamodb
) -> None:
    keys = [new_key(monthly_budget_usd=Decimal("100")) for _ in range(3)]
    rng = random.Random(7)
    plan = [(keys[rng.randrange(3)], rng.choice(KINDS), n) for n in range(240)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        billable = list(
            pool.map(lambda p: one_request(gateway.url, p[0][0], p[1], sim, p[2]), plan)
        )
    month = datetime.now(UTC).strftime("%Y-%m")
    limits = LimitsStore(dynamo, settings.limits_table)
    for secret, record in keys:
        expected = sum(
            1 for (k, _, _), b in zip(plan, billable, strict=True) if k[1] == record and b
        )
        items = usage_items(record.key_id, count=expected, timeout=20)
        assert len(items) == expected
        counters = limits.spend(record.key_id, month)
        total = sum((Decimal(str(i["cost_usd"])) for i in items), Decimal(0))
        assert total == counters["spent_usd"]
        assert counters["committed_usd"] == counters["spent_usd"], "a reservation was left behind"
        assert counters["requests"] == len(items)
        assert {i["status"] for i in items} <= {"ok", "incomplete"}
        assert secret not in str(items)

    env = {
        **os.environ,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint_url,
    }
    command = str(Path(sys.executable).parent / "mantle-gateway")
    out = subprocess.run(
        [command, "usage", "report", "--month", month, "--format", "csv"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    for _, record in keys:
        totals = [r for r in rows if r["key_id"] == record.key_id and r["api_surface"] == "*"]
        assert len(totals) == 1
        counters = limits.spend(record.key_id, month)
        assert Decimal(totals[0]["cost_usd"]) == counters["spent_usd"]
        assert Decimal(totals[0]["remaining_usd"]) == Decimal("100") - counters["spent_usd"]
        parts = [r for r in rows if r["key_id"] == record.key_id and r["api_surface"] != "*"]
        assert sum(Decimal(r["cost_usd"]) for r in parts) == counters["spent_usd"]
        assert {r["api_surface"] for r in parts} <= {"chat_completions", "responses"}
