"""An Anthropic Messages stream through the relay: forwarded event by event, usage read from
message_start and message_delta, a broken stream ended with one Anthropic error event."""

import json
from collections.abc import Iterator

from mantle_gateway.stream.anthropic_events import MessagesEvents
from mantle_gateway.stream.relay import Observation, Relay
from mantle_gateway.upstream.client import StreamBroken
from mantle_gateway.usage import TokenCounts


def event(kind: str, data: dict[str, object]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


START_USAGE = {
    "input_tokens": 12,
    "cache_creation_input_tokens": 100,
    "cache_read_input_tokens": 2000,
    "output_tokens": 1,
}


def message_stream(deltas: int = 3) -> list[bytes]:
    return [
        event("message_start", {"message": {"id": "msg_1", "usage": START_USAGE}}),
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        event("ping", {}),
        *[
            event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "x"}})
            for _ in range(deltas)
        ],
        event("content_block_stop", {"index": 0}),
        event(
            "message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}
        ),
        event("message_stop", {}),
    ]


def relay(chunks: Iterator[bytes], box: list[Observation]) -> Relay:
    return Relay(chunks, surface="messages", reader=MessagesEvents, on_finish=box.append)


def run(r: Relay) -> bytes:
    out = b"".join(r)
    r.close()
    return out


def test_events_pass_unchanged_and_usage_counts_the_cache_as_input() -> None:
    box: list[Observation] = []
    frames = message_stream()
    assert run(relay(iter(frames), box)) == b"".join(frames)
    (seen,) = box
    assert seen.tokens == TokenCounts(input=2112, output=9, cached=2000, cache_write=100)
    assert (seen.ended, seen.outcome, seen.estimated) == (True, None, False)


def test_cumulative_counts_in_message_delta_replace_earlier_ones() -> None:
    frames = message_stream()
    frames[-2] = event(
        "message_delta",
        {
            "delta": {},
            "usage": {"output_tokens": 20, "input_tokens": 15, "cache_read_input_tokens": None},
        },
    )
    box: list[Observation] = []
    run(relay(iter(frames), box))
    assert box[0].tokens == TokenCounts(input=2115, output=20, cached=2000, cache_write=100)


def test_data_only_frames_get_their_event_line() -> None:
    frames = [f.split(b"\n", 1)[1] for f in message_stream(1)]
    box: list[Observation] = []
    out = run(relay(iter(frames), box)).split(b"\n\n")
    assert out[0].startswith(b"event: message_start\ndata: ")
    assert out[3].startswith(b"event: content_block_delta\ndata: ")
    assert box[0].ended and box[0].tokens is not None and box[0].tokens.output == 9


def test_a_drop_ends_with_one_anthropic_error_event_and_estimated_output() -> None:
    def broken() -> Iterator[bytes]:
        yield from message_stream(deltas=5)[:6]  # start, block start, ping, three deltas
        raise StreamBroken("upstream_dropped")

    box: list[Observation] = []
    out = run(relay(broken(), box))
    last = out.split(b"\n\n")[-2]
    assert b"[DONE]" not in out
    name, data = last.split(b"\n")
    assert name == b"event: error"
    assert json.loads(data.removeprefix(b"data: ")) == {
        "type": "error",
        "error": {
            "type": "api_error",
            "message": "The upstream stream broke off. (upstream_dropped)",
        },
    }
    (seen,) = box
    assert seen.outcome == "upstream_dropped" and seen.estimated
    assert seen.tokens == TokenCounts(input=2112, output=1, cached=2000, cache_write=100)
    assert seen.events == 3


def test_a_stream_that_stops_before_message_stop_is_ended_by_the_gateway() -> None:
    box: list[Observation] = []
    out = run(relay(iter(message_stream()[:-1]), box))
    assert out.endswith(b"\n\n") and b"event: error\n" in out.split(b"\n\n")[-2]
    assert box[0].outcome == "upstream_ended_early"


def test_an_upstream_error_event_is_relayed_alone() -> None:
    error = event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
    frames = [*message_stream()[:4], error]
    box: list[Observation] = []
    out = run(relay(iter(frames), box))
    assert out == b"".join(frames)
    assert box[0].outcome == "upstream_error"


def test_client_disconnect_keeps_the_input_usage() -> None:
    box: list[Observation] = []
    r = relay(iter(message_stream()), box)
    next(r)
    r.close()
    assert box[0].outcome == "client_disconnected"
    assert box[0].tokens is not None and box[0].tokens.input == 2112
    assert box[0].estimated
