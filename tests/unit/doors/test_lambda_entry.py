"""Lambda entry: picks the door by the event's shape, passes the deadline, answers with the
runtime's HTTP-answer dict whose body closes the core's response exactly once."""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mantle_gateway import wiring
from mantle_gateway.doors import lambda_entry, rest_api
from mantle_gateway.messages import GatewayRequest, GatewayResponse

EVENTS = Path(__file__).resolve().parents[2] / "support" / "events"
NOW = 1_700_000_000.0


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


@dataclass
class FakeContext:
    aws_request_id: str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
    remaining_ms: int = 42_500
    function_name: str = "mantle-gateway"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:mantle-gateway"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class FakeGateway:
    """Answers with a canned response and remembers what it was asked."""

    response: GatewayResponse = field(
        default_factory=lambda: GatewayResponse(200, [("content-type", "application/json")], b"{}")
    )
    requests: list[GatewayRequest] = field(default_factory=list)

    def handle(self, request: GatewayRequest) -> GatewayResponse:
        self.requests.append(request)
        return self.response


def run(event: dict[str, Any], gateway: FakeGateway) -> dict[str, object]:
    return lambda_entry.handle_event(event, FakeContext(), gateway, clock=lambda: NOW)


def test_function_url_event_goes_through_the_function_url_door() -> None:
    gateway = FakeGateway()

    result = run(load_event("function_url_chat_stream"), gateway)

    (request,) = gateway.requests
    assert request.door == "function_url"
    assert request.path == "/openai/v1/chat/completions"
    assert request.headers["cookie"] == "session=abc123; theme=dark"
    assert result["statusCode"] == 200
    assert result["cookies"] == []


def test_rest_event_goes_through_the_rest_door_with_the_stage_stripped() -> None:
    gateway = FakeGateway()

    result = run(load_event("rest_api_chat_stream"), gateway)

    (request,) = gateway.requests
    assert request.door == "rest_api"
    assert request.path == "/openai/v1/chat/completions"
    assert "cookies" not in result


def test_deadline_is_now_plus_the_remaining_time_and_the_request_id_is_lambdas() -> None:
    gateway = FakeGateway()

    run(load_event("function_url_chat_stream"), gateway)

    (request,) = gateway.requests
    assert request.deadline == NOW + 42.5
    assert request.request_id == "8476a536-e9f4-11e8-9739-2dfe598c3fcd"


def test_oversized_rest_body_is_answered_413_without_calling_the_core() -> None:
    gateway = FakeGateway()
    event = load_event("rest_api_chat_stream")
    event["body"] = "x" * (rest_api.MAX_REQUEST_BYTES + 1)

    result = run(event, gateway)

    assert gateway.requests == []
    assert result["statusCode"] == 413
    assert result["headers"] == {"content-type": "application/json"}
    body = result["body"]
    assert isinstance(body, lambda_entry.ResponseBody)
    assert json.loads(b"".join(body))["error"]["code"] == "request_too_large"


@pytest.mark.parametrize("name", ["function_url_chat_stream", "rest_api_chat_stream"])
def test_invalid_base64_body_is_answered_400_without_calling_the_core(name: str) -> None:
    gateway = FakeGateway()
    event = load_event(name) | {"body": "not base64 !!", "isBase64Encoded": True}

    result = run(event, gateway)

    assert gateway.requests == []
    assert result["statusCode"] == 400
    body = result["body"]
    assert isinstance(body, lambda_entry.ResponseBody)
    assert json.loads(b"".join(body))["error"]["type"] == "invalid_request_error"


def test_unknown_event_shape_is_an_error_not_a_guess() -> None:
    with pytest.raises(lambda_entry.UnknownEventError):
        run({"hello": "world"}, FakeGateway())


def test_bytes_body_is_one_piece_and_close_records_once() -> None:
    closed: list[str] = []
    response = GatewayResponse(
        200,
        [("content-type", "application/json")],
        b'{"ok":true}',
        on_close=lambda: closed.append("x"),
    )

    result = run(load_event("function_url_chat_stream"), FakeGateway(response))
    body = result["body"]
    assert isinstance(body, lambda_entry.ResponseBody)

    assert list(body) == [b'{"ok":true}']
    body.close()
    body.close()
    assert closed == ["x"]


def test_streamed_body_yields_the_cores_chunks_and_close_stops_the_stream() -> None:
    seen: list[str] = []

    def chunks() -> Generator[bytes, None, None]:
        try:
            yield b"data: 1\n\n"
            yield b"data: 2\n\n"
        finally:
            seen.append("stream closed")

    response = GatewayResponse(
        200,
        [("content-type", "text/event-stream")],
        chunks(),
        on_close=lambda: seen.append("usage"),
    )
    body = run(load_event("rest_api_chat_stream"), FakeGateway(response))["body"]
    assert isinstance(body, lambda_entry.ResponseBody)

    assert next(body) == b"data: 1\n\n"
    body.close()

    assert seen == ["stream closed", "usage"]
    with pytest.raises(StopIteration):
        next(body)


def test_production_handler_asks_wiring_for_the_process_gateway(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gateway = FakeGateway()
    monkeypatch.setattr(wiring, "gateway", lambda: gateway)

    result = lambda_entry.handler(load_event("function_url_chat_stream"), FakeContext())

    assert result["statusCode"] == 200
    (request,) = gateway.requests
    assert request.request_id == "8476a536-e9f4-11e8-9739-2dfe598c3fcd"


@pytest.mark.parametrize(
    ("name", "door"),
    [("function_url_messages_stream", "function_url"), ("rest_api_messages_stream", "rest_api")],
)
def test_anthropic_messages_reach_the_core_through_both_doors(name: str, door: str) -> None:
    gateway = FakeGateway()

    run(load_event(name), gateway)

    (request,) = gateway.requests
    assert (request.door, request.path, request.query) == (
        door,
        "/anthropic/v1/messages",
        "beta=true",
    )
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["anthropic-beta"].startswith("claude-code-20250219,")


def test_door_refusals_under_anthropic_are_anthropic_shaped() -> None:
    oversized = load_event("rest_api_messages_stream")
    oversized["body"] = "x" * (rest_api.MAX_REQUEST_BYTES + 1)
    bad_base64 = load_event("function_url_messages_stream") | {
        "body": "not base64 !!",
        "isBase64Encoded": True,
    }
    for event, status, kind in (
        (oversized, 413, "request_too_large"),
        (bad_base64, 400, "invalid_request_error"),
    ):
        gateway = FakeGateway()
        result = run(event, gateway)
        assert gateway.requests == []
        assert result["statusCode"] == status
        body = result["body"]
        assert isinstance(body, lambda_entry.ResponseBody)
        answer = json.loads(b"".join(body))
        assert answer["type"] == "error" and answer["error"]["type"] == kind
