"""DESIGN §8's error table under `/anthropic/`, through the real local door: every refusal is
Anthropic-shaped (`{"type":"error","error":{"type","message"}}`) with the table's status, so the
anthropic SDK raises its matching exception; upstream errors come back verbatim; a stream that
breaks after its first byte ends with one `event: error`, and its usage is still recorded."""

from __future__ import annotations

import json
import socket
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import pytest

from mantle_gateway import simulator

MODEL = "anthropic.claude-haiku-4-5"
HELLO: Any = [{"role": "user", "content": "say something nice"}]
BODY: dict[str, Any] = {"model": MODEL, "max_tokens": 10, "messages": HELLO}


def post(
    url: str,
    key: str | None = None,
    *,
    body: Any = BODY,
    raw: bytes | None = None,
    method: str = "POST",
    path: str = "/anthropic/v1/messages",
) -> httpx.Response:
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    if key:
        headers["x-api-key"] = key
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.request(method, url + path, headers=headers, content=content, timeout=10)


def assert_anthropic_error(answer: httpx.Response, status: int, type_: str) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    payload = answer.json()
    assert set(payload) == {"type", "error"} and payload["type"] == "error"
    assert set(payload["error"]) == {"type", "message"}
    assert payload["error"]["type"] == type_
    message: str = payload["error"]["message"]
    return message


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_401_bad_or_missing_key(gateway, claude, sim) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        claude("mgw_" + "x" * 43).messages.create(**BODY)
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "Incorrect API key provided."},
    }
    missing = post(gateway.url)
    assert_anthropic_error(missing, 401, "authentication_error")
    assert missing.headers["x-should-retry"] == "false"  # or Claude Code retries for minutes
    assert sim.requests == []


def test_403_model_not_allowed(claude, new_key, sim) -> None:
    secret, record = new_key(models=("anthropic.claude-sonnet-*",))
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        claude(secret).messages.create(**BODY)
    assert caught.value.status_code == 403
    assert caught.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    assert record.key_id in caught.value.message
    assert sim.requests == []


@pytest.mark.parametrize(
    "raw", [b"not json", b"[1]", b'{"max_tokens":5}', b'{"model":"m","stream":"yes"}']
)
def test_400_bad_body(raw, gateway, new_key, sim) -> None:
    secret, _ = new_key()
    assert_anthropic_error(post(gateway.url, secret, raw=raw), 400, "invalid_request_error")
    assert sim.requests == []


def test_429_budget_spent_is_a_rate_limit_error(claude, new_key, sim, usage_items) -> None:
    secret, record = new_key(monthly_budget_usd=Decimal(0))
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude(secret).messages.create(**BODY)
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert "monthly budget" in caught.value.message
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert sim.requests == []
    # count_tokens is free, so a spent budget does not stop it, and neither call is billed
    assert claude(secret).messages.count_tokens(model=MODEL, messages=HELLO).input_tokens == 3
    assert usage_items(record.key_id, timeout=0.5) == []


def test_429_rate_limit_with_anthropic_headers(gateway, new_key, sim) -> None:
    secret, _ = new_key(rpm=1, tpm=100_000)
    first = post(gateway.url, secret)
    assert first.status_code == 200
    assert first.headers["anthropic-ratelimit-requests-limit"] == "1"
    assert first.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert first.headers["anthropic-ratelimit-tokens-limit"] == "100000"
    assert first.headers["anthropic-ratelimit-requests-reset"].endswith(":00Z")
    assert "x-ratelimit-limit-requests" not in first.headers
    refused = post(gateway.url, secret)
    assert_anthropic_error(refused, 429, "rate_limit_error")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "x-should-retry" not in refused.headers  # retrying after retry-after works
    assert refused.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert len(sim.requests) == 1


def test_upstream_429_is_relayed_verbatim_with_retry_after(
    claude, new_key, sim, usage_items
) -> None:
    sim.inject(simulator.ErrorAnswer(status=429, headers={"retry-after": "7"}))
    secret, record = new_key()
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude(secret).messages.create(**BODY)
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Too many requests, please slow down."},
    }
    claude(secret).messages.create(**BODY)  # the next call's item is the only one
    (item,) = usage_items(record.key_id)
    assert item["status"] == "ok"


@pytest.mark.parametrize(
    ("status", "error"), [(500, anthropic.InternalServerError), (529, anthropic.APIStatusError)]
)
def test_upstream_errors_on_a_stream_keep_their_status(status, error, claude, new_key, sim) -> None:
    sim.inject(
        simulator.ErrorAnswer(
            status=status,
            body=b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
        )
    )
    secret, _ = new_key()
    with pytest.raises(error) as caught:
        list(claude(secret).messages.create(**BODY, stream=True))
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[attr-defined,index]


def test_504_and_502_are_api_errors(start_gateway, new_key, sim) -> None:
    impatient = start_gateway(upstream_read_timeout_seconds=0.3)
    sim.inject(simulator.DelayHeaders(seconds=1.5))
    secret, _ = new_key()
    assert_anthropic_error(post(impatient.url, secret), 504, "api_error")
    nowhere = start_gateway(mantle_endpoint_url=f"http://127.0.0.1:{free_port()}")
    assert_anthropic_error(post(nowhere.url, secret), 502, "api_error")


def test_503_dynamodb_unavailable_is_overloaded(start_gateway, new_key, sim) -> None:
    blind = start_gateway(dynamodb_endpoint_url=f"http://127.0.0.1:{free_port()}")
    secret, _ = new_key()
    assert_anthropic_error(post(blind.url, secret), 503, "overloaded_error")
    assert sim.requests == []


def test_404_and_405_under_anthropic(gateway, new_key) -> None:
    secret, _ = new_key()
    for path in ("/anthropic/v1/complete", "/anthropic/v1/models", "/anthropic/v2/messages"):
        assert_anthropic_error(post(gateway.url, secret, path=path), 404, "not_found_error")
    wrong = post(gateway.url, secret, method="GET", raw=b"")
    assert_anthropic_error(wrong, 405, "invalid_request_error")
    assert wrong.headers["allow"] == "POST"


def test_flag_off_hides_every_anthropic_path_and_nothing_else(start_gateway, new_key, sim) -> None:
    off = start_gateway(enable_anthropic_passthrough=False)
    secret, _ = new_key()
    for path in ("/anthropic/v1/messages", "/anthropic/v1/messages/count_tokens"):
        assert_anthropic_error(post(off.url, secret, path=path), 404, "not_found_error")
    assert sim.requests == []
    chat = {"model": "openai.gpt-oss-120b", "messages": HELLO}
    assert post(off.url, secret, body=chat, path="/v1/chat/completions").status_code == 200


def test_drop_mid_stream_ends_with_an_error_event_and_incomplete_usage(
    claude, new_key, sim, usage_items
) -> None:
    sim.message_tokens, sim.cached_tokens = 50, 40
    sim.inject(simulator.DropMidStream(after_events=8))  # start, block start, ping, 5 deltas
    secret, record = new_key()
    stream = claude(secret).messages.create(**BODY | {"max_tokens": 100}, stream=True)
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        seen.extend(event.type for event in stream)
    assert seen.count("content_block_delta") == 5
    assert caught.value.body == {
        "type": "error",
        "error": {
            "type": "api_error",
            "message": "The upstream stream broke off. (upstream_dropped)",
        },
    }
    (item,) = usage_items(record.key_id)
    assert item["status"] == "incomplete" and item["outcome"] == "upstream_dropped"
    assert item["estimated"] is True
    assert item["input_tokens"] == 3 + 40 and item["cached_tokens"] == 40  # from message_start
    assert item["output_tokens"] == 5  # the deltas relayed before the drop


def test_drop_mid_stream_raw_bytes_end_with_one_error_event(gateway, new_key, sim) -> None:
    sim.message_tokens = 50
    sim.inject(simulator.DropMidStream(after_events=4))
    secret, _ = new_key()
    answer = post(gateway.url, secret, body=BODY | {"stream": True, "max_tokens": 100})
    assert answer.status_code == 200
    events = answer.content.split(b"\n\n")
    assert events[-1] == b""
    assert events[-2].startswith(b"event: error\ndata: {")
    assert sum(e.startswith(b"event: error") for e in events) == 1
    assert b"[DONE]" not in answer.content


def test_client_disconnect_mid_stream_is_recorded(gateway, new_key, sim, usage_items) -> None:
    sim.message_tokens, sim.event_delay = 200, 0.05
    secret, record = new_key()
    with httpx.stream(
        "POST",
        gateway.url + "/anthropic/v1/messages",
        headers={"x-api-key": secret, "anthropic-version": "2023-06-01"},
        json=BODY | {"stream": True, "max_tokens": 1000},
    ) as answer:
        first = next(answer.iter_raw())
        assert first.startswith(b"event: message_start\n")
    (item,) = usage_items(record.key_id, timeout=10)
    assert item["status"] == "incomplete" and item["outcome"] == "client_disconnected"
    assert item["input_tokens"] == 3 and item["estimated"] is True
    assert item["output_tokens"] < 200
