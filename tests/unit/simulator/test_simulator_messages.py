"""Anthropic Messages answers: what the official anthropic SDK parses, usage with cache counts,
the required `anthropic-version`, Anthropic-shaped refusals and the same faults as chat."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import anthropic
import httpx
import httpx2
import pytest

from mantle_gateway.simulator import DropMidStream, ErrorAnswer, Simulator

MODEL = "anthropic.claude-haiku-4-5"
HELLO = [{"role": "user", "content": "hello there world"}]


@pytest.fixture
def sdk(sim: Simulator, sign: Callable[[httpx.Request], None]) -> Iterator[anthropic.Anthropic]:
    """The official SDK, its requests signed for the simulator as the gateway signs them (the
    SDK sends through `httpx2`, which takes the same request hooks as httpx)."""
    http = httpx2.Client(event_hooks={"request": [sign]})  # type: ignore[list-item]
    client = anthropic.Anthropic(
        base_url=sim.url + "/anthropic", api_key="unused", http_client=http, max_retries=0
    )
    yield client
    client.close()


def _frames(body: str) -> list[tuple[str, dict[str, object]]]:
    out = []
    for block in body.split("\n\n")[:-1]:
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        out.append((event_line[7:], json.loads(data_line[6:])))
    return out


def test_message_answer_counts_cache_apart_from_input(
    sim: Simulator, sdk: anthropic.Anthropic
) -> None:
    sim.cached_tokens, sim.cache_write_tokens = 40, 7
    message = sdk.messages.create(
        model=MODEL,
        max_tokens=100,
        system="be brief",
        messages=HELLO,  # type: ignore[arg-type]
    )
    assert message.model == MODEL
    assert message.content[0].text == "".join(f"tok{i} " for i in range(8))  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 5  # words of system and messages
    assert message.usage.cache_read_input_tokens == 40
    assert message.usage.cache_creation_input_tokens == 7
    assert message.usage.output_tokens == 8
    seen = sim.requests[-1]
    assert seen.path == "/anthropic/v1/messages" and seen.signature_ok


def test_max_tokens_stops_the_answer_early(sdk: anthropic.Anthropic) -> None:
    message = sdk.messages.create(model=MODEL, max_tokens=3, messages=HELLO)  # type: ignore[arg-type]
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3


def test_stream_has_named_events_and_cumulative_output(
    sim: Simulator, sdk: anthropic.Anthropic, client: httpx.Client
) -> None:
    sim.message_tokens = 5
    with sdk.messages.stream(model=MODEL, max_tokens=64000, messages=HELLO) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "tok0 tok1 tok2 tok3 tok4 "
    assert final.usage.output_tokens == 5 and final.usage.input_tokens == 3

    raw = client.post(
        "/anthropic/v1/messages",
        headers={"anthropic-version": "2023-06-01"},
        json={"model": MODEL, "max_tokens": 10, "messages": HELLO, "stream": True},
    )
    assert raw.headers["content-type"] == "text/event-stream"
    frames = _frames(raw.text)
    kinds = [kind for kind, _ in frames]
    assert kinds[:3] == ["message_start", "content_block_start", "ping"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert kinds.count("content_block_delta") == 5
    assert all(data["type"] == kind for kind, data in frames)
    start_usage = frames[0][1]["message"]["usage"]  # type: ignore[index]
    assert start_usage == {
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "input_tokens": 3,
        "output_tokens": 1,
    }
    assert frames[-2][1]["usage"] == {"output_tokens": 5}


def test_count_tokens(sdk: anthropic.Anthropic) -> None:
    counted = sdk.messages.count_tokens(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert counted.input_tokens == 3


def test_anthropic_version_is_required(client: httpx.Client) -> None:
    body = {"model": MODEL, "max_tokens": 10, "messages": HELLO}
    for path in ("/anthropic/v1/messages", "/anthropic/v1/messages/count_tokens"):
        answer = client.post(path, json=body)
        assert answer.status_code == 400
        assert answer.json() == {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": "anthropic-version: header is required",
            },
        }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": HELLO, "max_tokens": 5}, "model: Field required"),
        ({"model": MODEL, "messages": HELLO}, "max_tokens: Field required"),
        ({"model": MODEL, "max_tokens": 5}, "messages: Field required"),
    ],
)
def test_missing_fields_are_refused_anthropic_shaped(
    client: httpx.Client, body: dict[str, object], message: str
) -> None:
    answer = client.post(
        "/anthropic/v1/messages", headers={"anthropic-version": "2023-06-01"}, json=body
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == {"type": "invalid_request_error", "message": message}


def test_refusals_under_anthropic_are_anthropic_shaped(
    sim: Simulator, client: httpx.Client
) -> None:
    unknown = client.post("/anthropic/v1/complete", json={})
    assert unknown.status_code == 404
    assert unknown.json()["type"] == "error"
    assert unknown.json()["error"]["type"] == "not_found_error"
    wrong_method = client.get("/anthropic/v1/messages")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    unsigned = httpx.post(sim.url + "/anthropic/v1/messages", json={})
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["type"] == "authentication_error"
    not_json = client.post(
        "/anthropic/v1/messages", content=b"{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json()["type"] == "error"


def test_injected_throttle_is_anthropic_shaped_with_retry_after(
    sim: Simulator, sdk: anthropic.Anthropic
) -> None:
    sim.inject(ErrorAnswer(status=429, headers={"retry-after": "7"}, path="/messages"))
    with pytest.raises(anthropic.RateLimitError) as caught:
        sdk.messages.create(model=MODEL, max_tokens=10, messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Too many requests, please slow down."},
    }


def test_drop_mid_stream_cuts_the_body(sim: Simulator, client: httpx.Client) -> None:
    sim.inject(DropMidStream(after_events=4))
    body = {"model": MODEL, "max_tokens": 10, "messages": HELLO, "stream": True}
    seen: list[bytes] = []
    with (
        client.stream(
            "POST", "/anthropic/v1/messages", headers={"anthropic-version": "2023-06-01"}, json=body
        ) as answer,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        seen.extend(answer.iter_raw())
    assert b"".join(seen).count(b"\n\n") == 4


def test_messages_are_not_on_the_openai_prefixes(client: httpx.Client) -> None:
    assert client.post("/v1/messages", json={}).status_code == 404
