"""Metering: usage the upstream could not report is estimated and flagged; bad numbers also
raise the alarm (a warning line and the `InvalidUpstreamUsage` metric); a background response
is billed only from a read that found it finished."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from mantle_gateway import observability
from mantle_gateway.core import body, metering, routes
from mantle_gateway.core.call import Call
from mantle_gateway.core.openai_api import OpenAIFamily
from mantle_gateway.core.pricing import PriceTable
from mantle_gateway.messages import GatewayRequest
from mantle_gateway.store.keys import KeyRecord
from mantle_gateway.store.responses import PendingBill, ResponseOwner
from mantle_gateway.stream.relay import Observation
from mantle_gateway.upstream.routing import PrefixRouter
from mantle_gateway.usage import TokenCounts, UsageRecord, from_chat_usage, from_responses_usage

MODEL = "openai.gpt-oss-120b"
BODY = json.dumps({"model": MODEL, "input": "x" * 400}).encode()


class Ledger:
    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    def record(self, record: UsageRecord, reserved: Decimal = Decimal(0), **_: Any) -> bool:
        self.records.append(record)
        return True


class Owners:
    def __init__(self) -> None:
        self.settled: list[str] = []

    def put(self, response_id: str, owner: ResponseOwner) -> None: ...

    def get(self, response_id: str) -> ResponseOwner | None:
        return None

    def settle(self, response_id: str) -> None:
        self.settled.append(response_id)


def call(route: routes.Route, owner: ResponseOwner | None = None) -> Call:
    request = GatewayRequest("POST", "/v1/responses", body=BODY)
    key = KeyRecord(key_id="key_1", digest="d", name="t")
    started = 1_700_000_000.0
    now = datetime.fromtimestamp(started, UTC)
    family = OpenAIFamily(PrefixRouter(()))
    made = Call(
        request, "req_1", started, now, route, key, body.parse(BODY), rate=None, family=family
    )
    made.owner = owner
    return made


@pytest.fixture(autouse=True)
def _metrics_on() -> Iterator[None]:
    """Metrics print EMF lines here, whatever an earlier test of the run configured."""
    before = dict(observability._metrics)
    observability.configure(level="INFO", metrics_namespace="MeteringTest", metrics_enabled=True)
    yield
    observability._metrics.update(before)


@pytest.fixture
def meter_and_ledger() -> tuple[metering.Meter, Ledger, Owners]:
    ledger, owners = Ledger(), Owners()
    meter = metering.Meter(
        ledger=ledger, owners=owners, prices=PriceTable(), clock=lambda: 1_700_000_001.0
    )
    return meter, ledger, owners


def emf_metrics(out: str) -> list[str]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    return [m["Name"] for line in lines for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]]


def test_bad_usage_is_estimated_flagged_and_alarmed(meter_and_ledger, capsys) -> None:
    meter, ledger, _ = meter_and_ledger
    observed = Observation(ended=True, events=9, usage_invalid=True)
    meter.record(call(routes.Route("responses", "/responses")), observed, stream=True)
    (record,) = ledger.records
    assert record.estimated is True and record.status == "ok"
    assert record.tokens == TokenCounts(input=len(BODY) // 4, output=9)
    assert record.cost_usd == PriceTable().cost(MODEL, record.tokens)
    assert emf_metrics(capsys.readouterr().out) == ["InvalidUpstreamUsage"]


def test_missing_usage_is_estimated_without_an_alarm(meter_and_ledger, capsys) -> None:
    meter, ledger, _ = meter_and_ledger
    meter.record(call(routes.Route("responses", "/responses")), Observation(events=2), stream=True)
    assert ledger.records[0].estimated is True
    assert emf_metrics(capsys.readouterr().out) == []


def test_a_whole_answer_without_usable_usage_estimates_its_output_from_its_size() -> None:
    answer = {"status": "completed", "usage": {"input_tokens": 3, "output_tokens": float("nan")}}
    observed = metering.observe(answer, 4000, lambda a: from_responses_usage(a.get("usage")))
    assert (observed.tokens, observed.usage_invalid) == (None, True)
    assert (observed.events, observed.status) == (1000, "completed")
    chat = {"usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    good = metering.observe(chat, 9, lambda a: from_chat_usage(a.get("usage")))
    assert good.tokens == TokenCounts(input=3, output=4) and not good.usage_invalid


PENDING = ResponseOwner(
    "key_1", "/v1", PendingBill(MODEL, 1.0, "local", Decimal("0.1"), input_estimate=77)
)


@pytest.mark.parametrize("status", [None, "queued", "in_progress"])
def test_a_background_response_read_unfinished_bills_nothing(meter_and_ledger, status) -> None:
    meter, ledger, owners = meter_and_ledger
    read = call(routes.Route("response_get", "/responses/resp_1", "resp_1"), PENDING)
    meter.bill_background(read, Observation(ended=True, status=status))
    assert ledger.records == [] and owners.settled == []


def test_a_background_response_read_finished_is_billed_and_settled(meter_and_ledger) -> None:
    meter, ledger, owners = meter_and_ledger
    read = call(routes.Route("response_get", "/responses/resp_1", "resp_1"), PENDING)
    meter.bill_background(read, Observation(ended=True, events=5, status="incomplete"))
    (record,) = ledger.records
    assert (record.request_id, record.outcome, record.estimated) == (
        "bg_resp_1",
        "incomplete",
        True,
    )
    assert record.tokens == TokenCounts(input=77, output=5), "the input estimated at creation"
    assert owners.settled == ["resp_1"]
    meter.bill_background(call(read.route, owner=None), Observation(status="completed"))
    assert len(ledger.records) == 1, "a read after the bill (no pending bill) bills nothing"
