"""PutEvents for budget alerts: the request EventBridge expects, signed as botocore would sign
it for service `events`, and every way it can be refused raising rather than passing quietly."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from unittest import mock

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from mantle_gateway.upstream.events import EventBridge, EventsError, endpoint_for
from mantle_gateway.upstream.signing import SigV4Signer

CREDS = ReadOnlyCredentials("AKIDEXAMPLE", "SECRET", "TOKEN")
NOW = 1_780_000_000.0
DETAIL = {"key_id": "key_a", "threshold_pct": 80, "spent_usd": "8.5"}


def sink(handler: httpx.MockTransport, region: str = "eu-west-1") -> EventBridge:
    signer = SigV4Signer(lambda: CREDS, region, clock=lambda: NOW, service="events")
    return EventBridge(signer, endpoint_for(region), transport=handler)


def test_one_entry_on_the_default_bus_signed_for_events_as_botocore_signs_it() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"FailedEntryCount": 0, "Entries": [{"EventId": "e1"}]})

    sink(httpx.MockTransport(answer)).put("mantle-gateway", "Budget Threshold Reached", DETAIL)

    (request,) = seen
    assert str(request.url) == "https://events.eu-west-1.amazonaws.com/"
    assert request.headers["x-amz-target"] == "AWSEvents.PutEvents"
    assert request.headers["content-type"] == "application/x-amz-json-1.1"
    body = json.loads(request.content)
    assert body == {
        "Entries": [
            {
                "Source": "mantle-gateway",
                "DetailType": "Budget Threshold Reached",
                "Detail": json.dumps(DETAIL, separators=(",", ":")),
                "EventBusName": "default",
            }
        ]
    }
    # the same request signed by botocore's SigV4Auth for `events` carries the same signature
    headers = {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "AWSEvents.PutEvents",
        "x-amz-content-sha256": hashlib.sha256(request.content).hexdigest(),
    }
    reference = AWSRequest("POST", str(request.url), data=request.content, headers=headers)
    with mock.patch(
        "botocore.auth.get_current_datetime", return_value=datetime.fromtimestamp(NOW, UTC)
    ):
        SigV4Auth(CREDS, "events", "eu-west-1").add_auth(reference)
    assert request.headers["authorization"] == reference.headers["Authorization"]
    assert "/eu-west-1/events/aws4_request" in request.headers["authorization"]


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(400, json={"__type": "AccessDeniedException", "message": "no"}),
        httpx.Response(503, text="<html>unavailable</html>"),
        httpx.Response(
            200,
            json={
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}],
            },
        ),
    ],
)
def test_a_refusal_or_a_failed_entry_raises(response: httpx.Response) -> None:
    events = sink(httpx.MockTransport(lambda _: response))

    with pytest.raises(EventsError) as refused:
        events.put("mantle-gateway", "Budget Threshold Reached", DETAIL)

    assert "<html>" not in str(refused.value)


def test_an_unreachable_endpoint_raises() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(httpx.ConnectError):
        sink(httpx.MockTransport(down)).put("s", "d", DETAIL)
