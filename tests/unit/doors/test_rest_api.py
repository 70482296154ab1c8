"""REST API door: proxy v1 events become requests whatever the stage or base path; responses
become the prelude keys with multi-value headers; bodies over 6 MB are refused with a 413."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mantle_gateway.doors import rest_api
from mantle_gateway.errors import RequestTooLargeError
from mantle_gateway.messages import GatewayResponse

EVENTS = Path(__file__).resolve().parents[2] / "support" / "events"


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def test_execute_api_event_reaches_the_core_without_the_stage() -> None:
    event = load_event("rest_api_chat_stream")
    assert event["requestContext"]["path"] == "/prod/openai/v1/chat/completions"

    request = rest_api.to_request(event, request_id="req-1", deadline=99.0)

    assert request.method == "POST"
    assert request.path == "/openai/v1/chat/completions"
    assert request.body == event["body"].encode()
    assert request.door == "rest_api"
    assert request.deadline == 99.0
    assert request.request_id == "req-1"


def test_custom_domain_base_path_is_not_part_of_the_path() -> None:
    event = load_event("rest_api_custom_domain")
    assert event["path"] == "/gw/v1/models"

    request = rest_api.to_request(event, request_id="r", deadline=None)

    assert request.method == "GET"
    assert request.path == "/v1/models"
    assert request.query == ""
    assert request.body == b""


@pytest.mark.parametrize(
    ("resource", "parameters", "expected"),
    [
        ("/health", None, "/health"),
        ("/{proxy+}", {"proxy": "openai/v1/models"}, "/openai/v1/models"),
        ("/v1/responses/{id}/cancel", {"id": "resp_1"}, "/v1/responses/resp_1/cancel"),
        ("/", None, "/"),
    ],
)
def test_path_is_rebuilt_from_the_resource_template(
    resource: str, parameters: dict[str, str] | None, expected: str
) -> None:
    event = load_event("rest_api_custom_domain")
    event["resource"] = resource
    event["pathParameters"] = parameters

    assert rest_api.api_path(event) == expected


@pytest.mark.parametrize(
    ("path", "context_path", "expected"),
    [
        # execute-api endpoint: `path` already lacks the stage.
        ("/v1/models", "/prod/v1/models", "/v1/models"),
        # custom domain mapped without a stage: both carry it; strip it.
        ("/prod/v1/models", "/prod/v1/models", "/v1/models"),
        # custom domain mapped to the stage at its root: nothing to strip.
        ("/v1/models", "/v1/models", "/v1/models"),
    ],
)
def test_without_a_usable_template_the_stage_prefix_is_stripped(
    path: str, context_path: str, expected: str
) -> None:
    event = load_event("rest_api_custom_domain")
    event["resource"] = "/{proxy+}"
    event["pathParameters"] = None
    event["path"] = path
    event["requestContext"]["path"] = context_path

    assert rest_api.api_path(event) == expected


def test_multi_value_headers_are_joined_and_lower_cased() -> None:
    request = rest_api.to_request(load_event("rest_api_chat_stream"), request_id="r", deadline=None)

    assert request.headers["x-amzn-bedrock-trace"] == "ENABLED, ENABLED_FULL"
    assert request.headers["cookie"] == "session=abc123; theme=dark"
    assert request.headers["openai-project"] == "proj_demo"
    assert all(name == name.lower() for name in request.headers)


def test_single_value_maps_are_used_when_multi_value_maps_are_absent() -> None:
    event = load_event("rest_api_chat_stream")
    event["multiValueHeaders"] = None
    event["multiValueQueryStringParameters"] = None

    request = rest_api.to_request(event, request_id="r", deadline=None)

    assert request.headers["accept"] == "text/event-stream"
    assert request.query == "api-version=2&tag=b%20c"


def test_multi_value_query_is_re_encoded_with_repeats_in_order() -> None:
    request = rest_api.to_request(load_event("rest_api_chat_stream"), request_id="r", deadline=None)

    assert request.query == "api-version=2&tag=a&tag=b%20c"


def test_base64_body_is_decoded() -> None:
    event = load_event("rest_api_base64_body")

    request = rest_api.to_request(event, request_id="r", deadline=None)

    assert request.body == base64.b64decode(event["body"])
    assert request.path == "/v1/responses"


def test_body_over_six_megabytes_is_refused_with_an_openai_shaped_413() -> None:
    event = load_event("rest_api_chat_stream")
    event["body"] = "x" * (rest_api.MAX_REQUEST_BYTES + 1)

    with pytest.raises(RequestTooLargeError) as refused:
        rest_api.to_request(event, request_id="r", deadline=None)

    assert refused.value.status == 413
    error = json.loads(refused.value.body())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "request_too_large"


def test_body_of_exactly_six_megabytes_is_accepted() -> None:
    event = load_event("rest_api_chat_stream")
    event["body"] = "x" * rest_api.MAX_REQUEST_BYTES

    assert len(rest_api.to_request(event, request_id="r", deadline=None).body) == 6_291_456


def test_repeated_headers_and_set_cookie_go_to_multi_value_headers_only() -> None:
    response = GatewayResponse(
        429,
        [
            ("content-type", "application/json"),
            ("retry-after", "3"),
            ("set-cookie", "a=1"),
            ("Vary", "accept"),
            ("vary", "origin"),
        ],
        b"{}",
    )

    prelude = rest_api.to_prelude(response)

    assert prelude == {
        "statusCode": 429,
        "headers": {"content-type": "application/json", "retry-after": "3"},
        "multiValueHeaders": {"set-cookie": ["a=1"], "Vary": ["accept", "origin"]},
    }


def test_prelude_has_no_multi_value_or_cookies_keys_when_not_needed() -> None:
    prelude = rest_api.to_prelude(GatewayResponse(200, [("content-type", "text/plain")], b"ok"))

    assert prelude == {"statusCode": 200, "headers": {"content-type": "text/plain"}}


def test_only_proxy_v1_events_match() -> None:
    assert rest_api.matches(load_event("rest_api_chat_stream"))
    assert not rest_api.matches(load_event("function_url_chat_stream"))


_text = st.text(max_size=12)


@given(st.dictionaries(_text, st.lists(_text, min_size=1, max_size=3), max_size=5))
def test_raw_query_decodes_back_to_the_same_pairs(multi: dict[str, list[str]]) -> None:
    event = {"multiValueQueryStringParameters": multi}

    query = rest_api.raw_query(event)

    expected = [(k, v) for k, values in multi.items() for v in values]
    assert parse_qsl(query, keep_blank_values=True) == expected
