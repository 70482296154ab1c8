"""The strict local door in front of the real gateway: the key is checked before a large body is
read, refusals carry the shape of the path's API, and the normal path is unchanged for the SDK."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.support.raw_http import Client, request

MODEL = "openai.gpt-oss-120b"
BIG = 5 * 1024 * 1024
"""A body size under the door's 6 MiB limit, well over the 64 KiB pre-check threshold."""


def test_a_prompt_over_the_precheck_threshold_is_answered_and_metered(
    new_key, client, usage_items
) -> None:
    key, record = new_key()
    prompt = "word " * 40_000  # 200 KB
    answer = client(key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": prompt}], max_tokens=3
    )
    assert answer.choices[0].message.content
    assert answer.usage is not None
    (item,) = usage_items(record.key_id)
    assert item["input_tokens"] == answer.usage.prompt_tokens


def test_a_prompt_over_the_precheck_threshold_with_a_bad_key_gets_the_sdks_401(client) -> None:
    bad = client("mgw_" + "A" * 43)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "word " * 40_000}]
        )


def announce(path: str, headers: list[tuple[str, str]]) -> bytes:
    """Only the head of a request announcing a 5 MiB body (the body is never sent)."""
    return request("POST", path, headers=[*headers, ("Content-Length", str(BIG))], length=False)


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        ("/v1/chat/completions", [], 401, "invalid_api_key"),
        ("/v1/chat/completions", [("Authorization", "Bearer mgw_" + "B" * 43)], 401, None),
        ("/v1/nowhere", [], 404, "not_found"),
        ("/v1/models", [], 405, "method_not_allowed"),
    ],
)
def test_a_large_body_is_refused_from_its_head_before_it_is_sent(
    gateway, sim, path: str, headers: list[tuple[str, str]], status: int, code: str | None
) -> None:
    with Client(gateway.server_address) as raw:
        raw.send(announce(path, headers))
        answer = raw.answer()
        assert answer.status == status
        error: dict[str, Any] = answer.json()["error"]
        assert code is None or error["code"] == code
        assert answer.headers["connection"] == "close"
        assert raw.closed()
    assert sim.requests == []


def test_under_anthropic_a_refusal_from_the_head_is_anthropic_shaped(gateway) -> None:
    with Client(gateway.server_address) as raw:
        raw.send(announce("/anthropic/v1/messages", [("x-api-key", "nope")]))
        answer = raw.answer()
    assert answer.status == 401
    payload = answer.json()
    assert payload["type"] == "error"
    assert set(payload["error"]) == {"type", "message"}
    # as the core's own refusals say it: Claude Code retries a 401 for minutes without this
    assert answer.headers["x-should-retry"] == "false"


def test_a_malformed_head_under_anthropic_gets_an_anthropic_400(gateway) -> None:
    with Client(gateway.server_address) as raw:
        raw.send(b"POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
        answer = raw.answer()
        assert raw.closed()
    assert answer.status == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"


def test_expect_100_continue_with_a_valid_key_gets_100_then_the_answer(
    gateway, new_key, usage_items
) -> None:
    key, record = new_key()
    body = b'{"model":"' + MODEL.encode() + b'","messages":[{"role":"user","content":"hi"}]}'
    head = request(
        "POST",
        "/v1/chat/completions",
        headers=[
            ("Authorization", f"Bearer {key}"),
            ("Content-Type", "application/json"),
            ("Expect", "100-continue"),
            ("Content-Length", str(len(body))),
        ],
        length=False,
    )
    with Client(gateway.server_address) as raw:
        raw.send(head)
        assert raw.answer().status == 100
        raw.send(body)
        answer = raw.answer()
    assert answer.status == 200
    assert answer.json()["choices"][0]["message"]["content"]
    assert len(usage_items(record.key_id)) == 1
