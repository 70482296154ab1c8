"""Chat Completions answers: Mantle's shapes, deterministic tokens, the usage chunk rule."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionUserMessageParam

from mantle_gateway.simulator import Simulator

MODEL = "openai.gpt-oss-120b"
EIGHT_TOKENS = "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 "
USER_HI: ChatCompletionUserMessageParam = {"role": "user", "content": "hi"}
MESSAGES = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": [{"type": "text", "text": "hello there world"}]},
]


def _events(response: httpx.Response) -> list[Any]:
    """Parse a data-only SSE body; `[DONE]` stays a string."""
    assert response.headers["content-type"] == "text/event-stream"
    frames = response.text.split("\n\n")
    assert frames[-1] == ""
    out: list[Any] = []
    for frame in frames[:-1]:
        assert frame.startswith("data: "), frame
        assert "\n" not in frame
        data = frame[len("data: ") :]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_non_streaming_completion(sim: Simulator, client: httpx.Client) -> None:
    response = client.post("/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers["x-request-id"] == response.headers["x-amzn-requestid"]
    assert response.headers["x-request-id"] == sim.requests[-1].request_id
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == MODEL
    assert isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "".join(f"tok{i} " for i in range(8)),
    }
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 5, "completion_tokens": 8, "total_tokens": 13}


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"max_tokens": 3}, 3),
        ({"max_completion_tokens": 4}, 4),
        ({"max_completion_tokens": 2, "max_tokens": 9}, 2),
    ],
)
def test_answer_length_follows_max_tokens(
    client: httpx.Client, limits: dict[str, int], expected: int
) -> None:
    body = client.post(
        "/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES, **limits}
    ).json()
    assert body["usage"]["completion_tokens"] == expected
    assert body["choices"][0]["message"]["content"].split() == [f"tok{i}" for i in range(expected)]


def test_reasoning_and_cached_tokens_are_reported(sim: Simulator, client: httpx.Client) -> None:
    sim.reasoning_tokens, sim.cached_tokens = 5, 3
    body = client.post(
        "/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES, "max_tokens": 2}
    ).json()
    assert body["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 7,
        "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 3},
        "completion_tokens_details": {"reasoning_tokens": 5},
    }


def test_stream_without_include_usage(client: httpx.Client) -> None:
    response = client.post(
        "/v1/chat/completions",
        json={"model": MODEL, "messages": MESSAGES, "stream": True, "max_tokens": 3},
    )
    assert response.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.headers
    events = _events(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert len(chunks) == 1 + 3 + 1
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert all(chunk["usage"] is None for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    contents = [chunk["choices"][0]["delta"]["content"] for chunk in chunks[1:4]]
    assert contents == ["tok0 ", "tok1 ", "tok2 "]
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks] == [None] * 4 + ["stop"]


def test_stream_with_include_usage_adds_a_usage_chunk_before_done(
    sim: Simulator, client: httpx.Client
) -> None:
    sim.reasoning_tokens = 2
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": MODEL,
            "messages": MESSAGES,
            "stream": True,
            "max_tokens": 3,
            "stream_options": {"include_usage": True},
        },
    )
    events = _events(response)
    assert events[-1] == "[DONE]"
    final, usage_chunk = events[-3], events[-2]
    assert final["choices"][0]["finish_reason"] == "stop"
    assert final["usage"] is None
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 5,
        "total_tokens": 10,
        "completion_tokens_details": {"reasoning_tokens": 2},
    }


def test_ten_thousand_token_stream(client: httpx.Client) -> None:
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": MODEL, "messages": MESSAGES, "stream": True, "max_tokens": 10_000},
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    assert len(lines) == 10_000 + 3
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[-3][6:])["choices"][0]["delta"]["content"] == "tok9999 "


def test_connection_is_reused_after_a_stream(sim: Simulator, client: httpx.Client) -> None:
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    client.post("/v1/chat/completions", json=body)
    client.post("/v1/chat/completions", json=body)
    client.get("/v1/models")
    assert len({seen.peer for seen in sim.requests}) == 1


def test_openai_sdk_parses_completion_and_stream() -> None:
    with Simulator(bearer_token="sim-token") as sim:
        sdk = openai.OpenAI(base_url=sim.url + "/v1", api_key="sim-token", max_retries=0)
        completion = sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
        assert completion.choices[0].message.content == "".join(f"tok{i} " for i in range(8))
        assert completion.usage is not None
        assert completion.usage.total_tokens == 9
        stream = sdk.chat.completions.create(
            model=MODEL,
            messages=[USER_HI],
            stream=True,
            stream_options={"include_usage": True},
            max_tokens=4,
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "tok0 tok1 tok2 tok3 "
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
