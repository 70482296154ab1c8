"""Function URL door: payload 2.0 events become requests; responses become the prelude keys."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mantle_gateway.doors import function_url
from mantle_gateway.messages import GatewayResponse

EVENTS = Path(__file__).resolve().parents[2] / "support" / "events"


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def test_chat_event_becomes_a_request_with_raw_path_query_and_body() -> None:
    event = load_event("function_url_chat_stream")

    request = function_url.to_request(event, request_id="req-1", deadline=1234.5)

    assert request.method == "POST"
    assert request.path == "/openai/v1/chat/completions"
    assert request.query == "api-version=2&tag=a&tag=b%20c"
    assert request.body == event["body"].encode()
    assert json.loads(request.body)["stream"] is True
    assert request.door == "function_url"
    assert request.deadline == 1234.5
    assert request.request_id == "req-1"


def test_cookies_array_goes_back_into_one_cookie_header() -> None:
    request = function_url.to_request(
        load_event("function_url_chat_stream"), request_id="r", deadline=None
    )

    assert request.headers["cookie"] == "session=abc123; theme=dark"
    assert request.headers["authorization"].startswith("Bearer mgw_test_")
    assert request.headers["openai-project"] == "proj_demo"
    assert all(name == name.lower() for name in request.headers)


def test_base64_body_is_decoded_and_method_comes_from_request_context() -> None:
    event = load_event("function_url_base64_body")

    request = function_url.to_request(event, request_id="r", deadline=None)

    assert request.method == "GET"
    assert request.path == "/v1/responses/resp_0123456789/input_items"
    assert request.query == "limit=2&order=asc"
    assert request.body == base64.b64decode(event["body"])
    assert request.headers["x-api-key"].startswith("mgw_test_")
    assert "cookie" not in request.headers


def test_absent_body_and_query_are_empty() -> None:
    event = load_event("function_url_chat_stream")
    for key in ("body", "rawQueryString", "cookies"):
        event.pop(key)

    request = function_url.to_request(event, request_id="r", deadline=None)

    assert request.body == b""
    assert request.query == ""
    assert "cookie" not in request.headers


def test_only_payload_v2_events_match() -> None:
    assert function_url.matches(load_event("function_url_chat_stream"))
    assert not function_url.matches(load_event("rest_api_chat_stream"))
    assert not function_url.matches({"version": "2.0"})


def test_set_cookie_goes_to_cookies_and_repeats_are_joined() -> None:
    response = GatewayResponse(
        200,
        [
            ("content-type", "text/event-stream"),
            ("Set-Cookie", "a=1; Path=/"),
            ("x-ratelimit-remaining-requests", "9"),
            ("vary", "accept"),
            ("Vary", "origin"),
            ("set-cookie", "b=2; Secure"),
        ],
        b"",
    )

    prelude = function_url.to_prelude(response)

    assert prelude == {
        "statusCode": 200,
        "headers": {
            "content-type": "text/event-stream",
            "x-ratelimit-remaining-requests": "9",
            "vary": "accept, origin",
        },
        "cookies": ["a=1; Path=/", "b=2; Secure"],
    }


def test_prelude_always_has_a_cookies_list() -> None:
    prelude = function_url.to_prelude(GatewayResponse(404, [], b"{}"))

    assert prelude == {"statusCode": 404, "headers": {}, "cookies": []}


_names = st.sampled_from(["content-type", "x-a", "X-A", "set-cookie", "Set-Cookie", "retry-after"])
_values = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=8)


@given(st.lists(st.tuples(_names, _values), max_size=12))
def test_split_cookies_keeps_every_value_in_order(pairs: list[tuple[str, str]]) -> None:
    headers, cookies = function_url.split_cookies(pairs)

    assert cookies == [v for n, v in pairs if n.lower() == "set-cookie"]
    for name, value in headers.items():
        expected = [v for n, v in pairs if n.lower() == name.lower()]
        assert value == ", ".join(expected)
    assert {n.lower() for n in headers} == {n.lower() for n, _ in pairs} - {"set-cookie"}
