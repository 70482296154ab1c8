"""`store.wire`: what goes on the wire, how DynamoDB's errors come back, and which failures are
tried again (botocore's standard rules for DynamoDB)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mantle_gateway.store.wire import MAX_ATTEMPTS, WireClient, WireError, endpoint_for
from mantle_gateway.upstream.signing import static_credentials

URL = "http://dynamodb.test:8000"
UPDATE = {
    "TableName": "limits",
    "Key": {"pk": {"S": "spend#k#2026-11"}},
    "UpdateExpression": "ADD n :one",
    "ExpressionAttributeValues": {":one": {"N": "1"}},
}


def answer(status: int, body: dict[str, Any], *, crc: bool = True) -> httpx.Response:
    content = json.dumps(body).encode()
    headers = {"content-type": "application/x-amz-json-1.0"}
    if crc:
        headers["x-amz-crc32"] = str(zlib.crc32(content))
    return httpx.Response(status, headers=headers, content=content)


def error(code: str, status: int = 400, **fields: Any) -> httpx.Response:
    return answer(status, {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", **fields})


class Wire:
    """A WireClient over a scripted DynamoDB: each request gets the next scripted step (a
    response, or an exception to raise); the requests and the pauses taken are kept."""

    def __init__(self, *steps: httpx.Response | Exception) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []
        self.pauses: list[float] = []
        self.client = WireClient(
            URL,
            "us-east-1",
            static_credentials("AKIDEXAMPLE", "secret"),
            transport=httpx.MockTransport(self._answer),
            sleep=self.pauses.append,
        )

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def test_a_call_is_one_signed_json_post_and_its_answer_comes_back_as_json() -> None:
    wire = Wire(answer(200, {"Attributes": {"n": {"N": "1"}}}))

    assert wire.client.update_item(**UPDATE) == {"Attributes": {"n": {"N": "1"}}}

    (request,) = wire.requests
    assert request.method == "POST" and str(request.url) == URL + "/"
    assert request.headers["x-amz-target"] == "DynamoDB_20120810.UpdateItem"
    assert request.headers["content-type"] == "application/x-amz-json-1.0"
    assert json.loads(request.content) == UPDATE
    authorization = request.headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/us-east-1/dynamodb/aws4_request" in authorization
    assert "secret" not in authorization


def test_a_condition_that_failed_is_raised_once_with_what_dynamodb_found() -> None:
    found = {"pk": {"S": "spend#k#2026-11"}}
    wire = Wire(error("ConditionalCheckFailedException", Item=found, message="failed"))

    with pytest.raises(WireError) as info:
        wire.client.update_item(**UPDATE)

    assert info.value.code == "ConditionalCheckFailedException"
    assert info.value.answer["Item"] == found
    assert len(wire.requests) == 1 and wire.pauses == []


@pytest.mark.parametrize(
    ("failure", "longest_first_pause"),
    [
        (lambda: error("ProvisionedThroughputExceededException"), 1.0),
        (lambda: error("ThrottlingException"), 1.0),
        (lambda: error("InternalServerError", 500), 0.025),
        (lambda: answer(503, {"message": "unavailable"}), 0.025),
        (lambda: httpx.ConnectError("refused"), 0.025),
        (lambda: httpx.ConnectTimeout("slow"), 0.025),
        (lambda: httpx.RemoteProtocolError("closed"), 0.025),
    ],
)
def test_transient_failures_are_tried_three_times_after_jittered_pauses(
    failure: Callable[[], httpx.Response | Exception], longest_first_pause: float
) -> None:
    wire = Wire(*(failure() for _ in range(MAX_ATTEMPTS)))

    with pytest.raises(WireError):
        wire.client.update_item(**UPDATE)

    assert len(wire.requests) == MAX_ATTEMPTS
    assert len(wire.pauses) == MAX_ATTEMPTS - 1
    assert 0 <= wire.pauses[0] < longest_first_pause
    assert 0 <= wire.pauses[1] < 2 * longest_first_pause


def test_a_transient_failure_then_an_answer_is_the_answer() -> None:
    wire = Wire(error("ThrottlingException"), answer(200, {"Item": {"n": {"N": "2"}}}))

    assert wire.client.get_item(TableName="limits", Key=UPDATE["Key"]) == {
        "Item": {"n": {"N": "2"}}
    }
    assert len(wire.requests) == 2
    assert wire.requests[0].headers["authorization"] and wire.requests[1].headers["x-amz-date"]


def test_a_call_whose_answer_was_lost_is_sent_again_then_given_up() -> None:
    """A write may have applied: the stores' writes are idempotent for that (decision 0006)."""
    wire = Wire(httpx.ReadError("reset"), answer(200, {"Items": [], "Count": 0}))
    assert wire.client.query(TableName="usage")["Count"] == 0
    assert len(wire.requests) == 2

    wire = Wire(*(httpx.ReadTimeout("no answer") for _ in range(MAX_ATTEMPTS)))
    with pytest.raises(WireError) as info:
        wire.client.update_item(**UPDATE)
    assert info.value.code == "ReadTimeout"
    assert len(wire.requests) == MAX_ATTEMPTS


def test_an_answer_that_does_not_match_its_checksum_is_not_believed() -> None:
    bad = answer(200, {"Attributes": {"n": {"N": "9"}}}, crc=False)
    bad.headers["x-amz-crc32"] = "12345"
    wire = Wire(bad, answer(200, {"Attributes": {"n": {"N": "1"}}}))

    assert wire.client.update_item(**UPDATE) == {"Attributes": {"n": {"N": "1"}}}
    assert len(wire.requests) == 2


def test_an_error_without_a_json_body_is_named_by_its_status() -> None:
    wire = Wire(httpx.Response(403, content=b"<html>denied</html>"))

    with pytest.raises(WireError) as info:
        wire.client.put_item(TableName="t", Item={})

    assert info.value.code == "HTTP403"
    assert len(wire.requests) == 1


def test_without_credentials_nothing_is_sent_and_the_store_fails_closed() -> None:
    sent: list[httpx.Request] = []
    client = WireClient(
        URL,
        "us-east-1",
        lambda: None,
        transport=httpx.MockTransport(lambda request: sent.append(request) or answer(200, {})),
    )

    with pytest.raises(WireError) as info:
        client.get_item(TableName="keys", Key={})

    assert info.value.code == "NoCredentials" and sent == []


def test_the_public_endpoint_is_the_regions_own() -> None:
    assert endpoint_for("eu-west-1") == "https://dynamodb.eu-west-1.amazonaws.com/"
    assert endpoint_for("us-gov-west-1") == "https://dynamodb.us-gov-west-1.amazonaws.com/"
    assert endpoint_for("cn-north-1") == "https://dynamodb.cn-north-1.amazonaws.com.cn/"
