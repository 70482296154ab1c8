"""Streams that break: the client sees a clean SSE ending, the ledger still gets the usage."""

from __future__ import annotations

import json

import httpx

from mantle_gateway import simulator

MODEL = "openai.gpt-oss-120b"


def stream_chat(url: str, key: str, **body: object) -> httpx.Response:
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    return httpx.post(
        url + "/v1/chat/completions", headers={"x-api-key": key}, json=payload | body, timeout=10
    )


def test_upstream_drop_mid_stream_ends_with_error_then_done(
    gateway, new_key, sim, usage_items
) -> None:
    sim.inject(simulator.DropMidStream(after_events=3))
    key, record = new_key()
    answer = stream_chat(gateway.url, key, max_tokens=10)
    assert answer.status_code == 200
    events = [e for e in answer.content.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    error = json.loads(events[-2].removeprefix(b"data: "))["error"]
    assert error["type"] == "upstream_error"
    assert error["code"] == "upstream_dropped"
    (item,) = usage_items(record.key_id)
    assert item["status"] == "incomplete"
    assert item["outcome"] == "upstream_dropped"
    assert item["estimated"] is True
    assert item["output_tokens"] >= 1


def test_client_disconnect_mid_stream_is_recorded(gateway, new_key, sim, usage_items) -> None:
    sim.event_delay = 0.05
    key, record = new_key()
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers={"x-api-key": key},
        json=payload | {"max_tokens": 200},
    ) as answer:
        first = next(answer.iter_raw())
        assert first.startswith(b"data: ")
    (item,) = usage_items(record.key_id, timeout=10)
    assert item["status"] == "incomplete"
    assert item["outcome"] == "client_disconnected"
    assert 1 <= item["output_tokens"] < 200
