"""One test per row of DESIGN §8's error table, through the real local door.

Each refusal is OpenAI-shaped JSON with the table's status, type and code; refusals decided by
the gateway happen before any upstream call (the simulator sees nothing).
"""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from mantle_gateway import simulator

MODEL = "openai.gpt-oss-120b"
CHAT: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
PASSTHROUGH_PATHS = [
    ("POST", "/chat/completions"),
    ("POST", "/responses"),
    ("GET", "/responses/resp_1"),
    ("DELETE", "/responses/resp_1"),
    ("POST", "/responses/resp_1/cancel"),
    ("GET", "/responses/resp_1/input_items"),
    ("GET", "/models"),
]


def call(
    url: str,
    key: str | None = None,
    *,
    body: Any = CHAT,
    raw: bytes | None = None,
    method: str = "POST",
    path: str = "/openai/v1/chat/completions",
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.request(method, url + path, headers=headers, content=content, timeout=10)


def assert_error(
    answer: httpx.Response, status: int, type_: str, code: str | None
) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["type"] == type_
    assert error["code"] == code
    return error


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("case", ["missing", "unknown", "malformed", "expired"])
def test_401_invalid_api_key(case, gateway, new_key, sim) -> None:
    keys = {"missing": None, "unknown": "mgw_" + "A" * 43, "malformed": "sk-not-ours"}
    key = keys[case] if case in keys else new_key(expires_at="2020-01-01")[0]
    assert_error(call(gateway.url, key), 401, "authentication_error", "invalid_api_key")
    assert sim.requests == []


def test_401_after_revocation_once_the_cache_expires(
    start_gateway, new_key, settings, dynamo
) -> None:
    from mantle_gateway.store.keys import KeyStore

    uncached = start_gateway(key_cache_ttl_seconds=0.0)
    key, record = new_key()
    assert call(uncached.url, key).status_code == 200
    KeyStore(dynamo, settings.keys_table).revoke(record)
    error = assert_error(call(uncached.url, key), 401, "authentication_error", "invalid_api_key")
    assert "revoked" in error["message"]


def test_401_body_never_echoes_the_key(gateway) -> None:
    key = "mgw_" + "B" * 43
    answer = call(gateway.url, key)
    assert key not in answer.text


def test_403_model_not_permitted(gateway, new_key, sim) -> None:
    key, _ = new_key(models=("openai.gpt-oss-20b",))
    error = assert_error(call(gateway.url, key), 403, "permission_error", "model_not_permitted")
    assert error["param"] == "model"
    assert sim.requests == []


def test_403_project_not_permitted(gateway, new_key, sim) -> None:
    key, _ = new_key(project="proj_a1")
    answer = httpx.post(
        gateway.url + "/openai/v1/chat/completions",
        headers={"authorization": f"Bearer {key}", "openai-project": "proj_b2"},
        json=CHAT,
        timeout=10,
    )
    error = assert_error(answer, 403, "permission_error", "project_not_permitted")
    assert error["param"] == "OpenAI-Project"
    assert sim.requests == []


@pytest.mark.parametrize(
    "raw", [b"{not json", b"[1, 2]", b'"a string"', b'{"messages": []}', b"\xff\xfe\xfd"]
)
def test_400_bad_body(raw, gateway, new_key, sim) -> None:
    key, _ = new_key()
    assert_error(call(gateway.url, key, raw=raw), 400, "invalid_request_error", "invalid_request")
    assert sim.requests == []


def test_413_body_over_the_door_limit(start_gateway, new_key, sim) -> None:
    small = start_gateway(max_request_bytes=2048)
    key, _ = new_key()
    body = dict(CHAT, messages=[{"role": "user", "content": "x" * 4096}])
    assert_error(call(small.url, key, body=body), 413, "invalid_request_error", "request_too_large")
    assert sim.requests == []


def test_429_rate_limit_with_headers(gateway, new_key, sim) -> None:
    key, _ = new_key(rpm=2)
    first = call(gateway.url, key)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert call(gateway.url, key).status_code == 200
    refused = call(gateway.url, key)
    assert_error(refused, 429, "rate_limit_error", "rate_limit_exceeded")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"].endswith("s")
    assert len(sim.requests) == 2


def test_429_budget_exceeded(gateway, new_key, sim, usage_items) -> None:
    from decimal import Decimal

    key, record = new_key(monthly_budget_usd=Decimal("0.000001"))
    assert call(gateway.url, key).status_code == 200
    usage_items(record.key_id)  # the spend lands with the usage item
    assert_error(call(gateway.url, key), 429, "insufficient_quota", "budget_exceeded")
    assert len(sim.requests) == 1


@pytest.mark.parametrize("status", [400, 429, 500, 503])
def test_upstream_error_verbatim(status, gateway, new_key, sim, usage_items) -> None:
    body = {
        "error": {"message": f"upstream says {status}", "type": "x", "code": "y", "param": None}
    }
    sim.inject(
        simulator.ErrorAnswer(
            status=status, body=body, headers={"retry-after": "7", "x-request-id": "req-up-1"}
        )
    )
    key, record = new_key()
    answer = call(gateway.url, key)
    assert answer.status_code == status
    assert answer.json() == body
    assert answer.headers["retry-after"] == "7"
    assert answer.headers["x-request-id"] == "req-up-1"
    assert usage_items(record.key_id, timeout=0.3) == [], "upstream refusals are not billed"


def test_upstream_error_on_a_stream_keeps_its_status(gateway, new_key, sim) -> None:
    sim.inject(simulator.ErrorAnswer(status=429, headers={"retry-after": "3"}))
    key, _ = new_key()
    answer = call(gateway.url, key, body=dict(CHAT, stream=True))
    assert answer.status_code == 429
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers["retry-after"] == "3"


def test_504_upstream_timeout_before_first_byte(start_gateway, new_key, sim) -> None:
    impatient = start_gateway(upstream_read_timeout_seconds=0.3)
    sim.inject(simulator.DelayHeaders(seconds=1.5))
    key, _ = new_key()
    assert_error(call(impatient.url, key), 504, "upstream_error", "upstream_timeout")


def test_502_upstream_unreachable(start_gateway, new_key) -> None:
    nowhere = start_gateway(mantle_endpoint_url=f"http://127.0.0.1:{free_port()}")
    key, _ = new_key()
    assert_error(call(nowhere.url, key), 502, "upstream_error", "upstream_unreachable")


def test_502_upstream_resets_connection(gateway, new_key, sim) -> None:
    sim.inject(simulator.ResetConnection())
    key, _ = new_key()
    assert_error(call(gateway.url, key), 502, "upstream_error", "upstream_unreachable")


@pytest.mark.parametrize(("method", "rest"), PASSTHROUGH_PATHS)
@pytest.mark.parametrize("prefix", ["/openai/v1", "/v1"])
def test_404_flag_off_on_every_path(method, rest, prefix, start_gateway, new_key, sim) -> None:
    off = _flag_off(start_gateway)
    key, _ = new_key()
    answer = call(off.url, key, method=method, path=prefix + rest)
    assert_error(answer, 404, "not_found", "not_found")
    assert sim.requests == []


_off_server: list[Any] = []


def _flag_off(start_gateway: Any) -> Any:
    if not _off_server:
        _off_server.append(start_gateway(enable_openai_passthrough=False))
    return _off_server[0]


def test_404_unknown_path_and_405_wrong_method(gateway, new_key) -> None:
    key, _ = new_key()
    assert_error(call(gateway.url, key, path="/v1/embeddings"), 404, "not_found", "not_found")
    wrong = call(gateway.url, key, method="GET", path="/v1/chat/completions", raw=b"")
    assert_error(wrong, 405, "invalid_request_error", "method_not_allowed")
    assert wrong.headers["allow"] == "POST"


def test_503_dynamodb_unavailable_fails_closed(start_gateway, new_key, sim) -> None:
    blind = start_gateway(dynamodb_endpoint_url=f"http://127.0.0.1:{free_port()}")
    key, _ = new_key()
    assert_error(call(blind.url, key), 503, "api_error", "service_unavailable")
    assert sim.requests == []


def test_health_needs_no_key(gateway) -> None:
    answer = httpx.get(gateway.url + "/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_stage_default_rpm_applies_to_keys_without_limits(start_gateway, new_key) -> None:
    limited = start_gateway(default_key_rpm=1)
    key, _ = new_key()
    assert call(limited.url, key).headers["x-ratelimit-limit-requests"] == "1"
    assert_error(call(limited.url, key), 429, "rate_limit_error", "rate_limit_exceeded")
