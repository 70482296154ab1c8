"""The guarded stream's windows on canned relay output: what is released, masked, or cut."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from mantle_gateway.stream.guard_window import ChatDialect, GuardedStream
from mantle_gateway.stream.relay import DONE, Observation
from mantle_gateway.stream.sse import SSEDecoder, frame


class _Relay:
    def __init__(self, chunks: list[bytes]) -> None:
        self.observed = Observation()
        self._chunks = chunks
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)

    def close(self) -> None:
        self.closed = True


def _chunk(*contents: str, finish: str | None = None) -> bytes:
    choices = [
        {"index": i, "delta": {"content": c}, "finish_reason": finish}
        for i, c in enumerate(contents)
    ]
    return frame(
        json.dumps({"id": "c1", "object": "chat.completion.chunk", "choices": choices}).encode()
    )


def _events(body: bytes) -> list[Any]:
    return [
        json.loads(e.data) if e.data != b"[DONE]" else "[DONE]"
        for e in SSEDecoder().feed(body)
        if e.data is not None
    ]


def _text(events: list[Any]) -> str:
    return "".join(
        c["delta"].get("content") or "" for e in events if e != "[DONE]" for c in e["choices"]
    )


def test_a_masked_window_goes_out_masked_and_the_stream_goes_on() -> None:
    checked: list[str] = []

    def check(text: str) -> tuple[str, str]:
        checked.append(text)
        return ("mask", text.replace("4111", "{CARD}")) if "4111" in text else ("pass", text)

    chunks = [
        _chunk("card "),
        _chunk("4111 "),
        _chunk("then "),
        _chunk("more", finish="stop"),
        DONE,
    ]
    relay = _Relay(chunks)
    stream = GuardedStream(relay, dialect=ChatDialect(), check=check, window=8)
    events = _events(b"".join(stream))
    assert _text(events) == "card {CARD} then more"
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert all("4111" not in text for text in checked[1:])  # the overlap is the masked text
    stream.close()
    assert relay.closed
    assert relay.observed.outcome is None


def test_every_choice_is_checked_and_a_block_keeps_nothing_of_its_window() -> None:
    def check(text: str) -> tuple[str, str]:
        return ("block", "Blocked.") if "bad" in text else ("pass", text)

    chunks = [_chunk("ok ", "fine "), _chunk("x", "bad"), _chunk("y", "z", finish="stop"), DONE]
    relay = _Relay(chunks)
    events = _events(b"".join(GuardedStream(relay, dialect=ChatDialect(), check=check, window=4)))
    assert _text(events) == "ok fine Blocked."
    assert [e["choices"][0]["finish_reason"] for e in events[-3:-1]] == [None, "content_filter"]
    assert events[-1] == "[DONE]"
    assert relay.observed.outcome == "guardrail_intervened"
