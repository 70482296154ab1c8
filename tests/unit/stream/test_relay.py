"""The relay forwards event by event, reads usage, strips what it injected, ends broken streams."""

import json
from collections.abc import Iterator

import pytest

from mantle_gateway.stream.relay import DONE, Observation, Relay
from mantle_gateway.upstream.client import StreamBroken
from mantle_gateway.usage import TokenCounts


def chat_stream(include_usage: bool) -> list[bytes]:
    chunks = [
        b'data: {"choices":[{"delta":{"content":"a"},"index":0}],"usage":null}\n\n',
        b'data: {"choices":[{"delta":{"content":"b"},"index":0}],"usage":null}\n\n',
        b'data: {"choices":[{"delta":{},"finish_reason":"stop","index":0}],"usage":null}\n\n',
    ]
    if include_usage:
        usage = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
        chunks.append(b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n")
    return [*chunks, DONE]


def run(relay: Relay) -> bytes:
    """As a door does: read to the end, then close (which is when usage is recorded)."""
    out = b"".join(relay)
    relay.close()
    return out


def finish_box() -> tuple[list[Observation], object]:
    box: list[Observation] = []
    return box, box.append


def test_chat_usage_read_and_forwarded_when_asked() -> None:
    box, finish = finish_box()
    out = run(Relay(iter(chat_stream(True)), surface="chat_completions", on_finish=finish))
    assert out == b"".join(chat_stream(True))
    assert box[0].tokens == TokenCounts(input=7, output=2)
    assert box[0].outcome is None


def test_injected_usage_chunk_is_stripped_but_metered() -> None:
    box, finish = finish_box()
    relay = Relay(
        iter(chat_stream(True)), surface="chat_completions", strip_usage=True, on_finish=finish
    )
    assert run(relay) == b"".join(chat_stream(False))
    assert box[0].tokens == TokenCounts(input=7, output=2)


def test_bytes_split_mid_event_still_forward_whole_events() -> None:
    whole = b"".join(chat_stream(True))
    pieces = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    _, finish = finish_box()
    relay = Relay(iter(pieces), surface="chat_completions", on_finish=finish)
    out = list(relay)
    relay.close()
    assert b"".join(out) == whole
    assert all(piece.endswith(b"\n\n") for piece in out)


def test_events_that_arrive_together_leave_together_with_usage_stripped() -> None:
    box, finish = finish_box()
    burst = b"".join(chat_stream(True))
    relay = Relay(iter([burst]), surface="chat_completions", strip_usage=True, on_finish=finish)
    assert list(relay) == [b"".join(chat_stream(False))]
    relay.close()
    assert box[0].tokens == TokenCounts(input=7, output=2)
    assert (box[0].events, box[0].ended, box[0].outcome) == (3, True, None)


def test_responses_data_only_frames_get_event_lines_and_owner_id() -> None:
    frames = [
        b'data: {"type":"response.created","response":{"id":"resp_1"}}\n\n',
        b'data: {"type":"response.output_text.delta","delta":"hi"}\n\n',
        b'data: {"type":"response.completed","response":{"id":"resp_1","usage":'
        b'{"input_tokens":3,"output_tokens":4,"output_tokens_details":{"reasoning_tokens":2}}}}\n\n',
    ]
    seen: list[str] = []
    box, finish = finish_box()
    out = run(
        Relay(iter(frames), surface="responses", on_response_id=seen.append, on_finish=finish)
    )
    lines = out.split(b"\n\n")
    assert lines[0].startswith(b"event: response.created\ndata: ")
    assert lines[1].startswith(b"event: response.output_text.delta\n")
    assert lines[2].startswith(b"event: response.completed\n")
    assert seen == ["resp_1"]
    assert box[0].tokens == TokenCounts(input=3, output=4, reasoning=2)


def broken(chunks: list[bytes]) -> Iterator[bytes]:
    yield from chunks
    raise StreamBroken("upstream_dropped")


def test_upstream_drop_ends_with_error_event_and_done() -> None:
    box, finish = finish_box()
    out = run(Relay(broken(chat_stream(False)[:2]), surface="chat_completions", on_finish=finish))
    tail = out.split(b"\n\n")[-3:]
    assert json.loads(tail[0][len(b"data: ") :])["error"]["code"] == "upstream_dropped"
    assert tail[1] == b"data: [DONE]"
    assert box[0].outcome == "upstream_dropped"
    assert box[0].events == 2


def test_client_disconnect_is_observed_once() -> None:
    box, finish = finish_box()
    relay = Relay(iter(chat_stream(True)), surface="chat_completions", on_finish=finish)
    next(relay)
    relay.close()
    assert len(box) == 1
    assert box[0].outcome == "client_disconnected"


def test_deadline_ends_the_stream_cleanly() -> None:
    box, finish = finish_box()
    relay = Relay(
        iter(chat_stream(True)),
        surface="chat_completions",
        on_finish=finish,
        deadline=10.0,
        clock=lambda: 10.0,
    )
    out = run(relay)
    assert out.endswith(DONE)
    assert box[0].outcome == "deadline"


def test_usage_is_recorded_when_the_door_closes_not_before_the_last_byte() -> None:
    box, finish = finish_box()
    relay = Relay(iter(chat_stream(True)), surface="chat_completions", on_finish=finish)
    assert b"".join(relay).endswith(DONE)
    assert box == [], "the client may still be waiting for the end of the body"
    relay.close()
    relay.close()
    assert len(box) == 1
    assert box[0].outcome is None


BAD_USAGE_NUMBERS = [b"NaN", b"Infinity", b"-Infinity", b"1e45", b"-3", b"2.5", b"9" * 5000]


@pytest.mark.parametrize("bad", BAD_USAGE_NUMBERS, ids=lambda b: b[:12].decode())
@pytest.mark.parametrize("strip", [False, True])
def test_bad_chat_usage_numbers_end_the_stream_normally_flagged_and_unbilled(bad, strip) -> None:
    # GIVEN a chat stream whose usage chunk carries a number no bill can hold
    frames = chat_stream(False)
    usage = b'{"choices":[],"usage":{"prompt_tokens":' + bad + b',"completion_tokens":2}}'
    frames.insert(-1, b"data: " + usage + b"\n\n")
    box, finish = finish_box()
    # WHEN relayed THEN the stream reaches [DONE] with nothing added, the usage counts as none
    relay = Relay(iter(frames), surface="chat_completions", strip_usage=strip, on_finish=finish)
    out = run(relay)
    assert out == b"".join(chat_stream(False) if strip else frames)
    assert (box[0].tokens, box[0].usage_invalid) == (None, True)
    assert (box[0].ended, box[0].outcome) == (True, None)


@pytest.mark.parametrize("bad", BAD_USAGE_NUMBERS, ids=lambda b: b[:12].decode())
def test_bad_responses_usage_numbers_end_the_stream_normally_flagged(bad) -> None:
    frames = [
        b'data: {"type":"response.created","response":{"id":"resp_1"}}\n\n',
        b'data: {"type":"response.completed","response":{"id":"resp_1","status":"completed",'
        b'"usage":{"input_tokens":3,"output_tokens":' + bad + b"}}}\n\n",
    ]
    box, finish = finish_box()
    out = run(Relay(iter(frames), surface="responses", on_finish=finish))
    assert out.count(b"event: ") == 2 and b"error" not in out
    assert (box[0].tokens, box[0].usage_invalid, box[0].status) == (None, True, "completed")
    assert box[0].response_id == "resp_1"
