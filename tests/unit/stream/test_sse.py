"""The decoder yields the same events however the bytes are split, whatever the line endings."""

from hypothesis import given
from hypothesis import strategies as st

from mantle_gateway.stream.sse import SSEDecoder, SSEEvent, frame, parse_block

STREAM = (
    b'data: {"a":1}\n\n'
    b'event: response.created\ndata: {"type":"response.created"}\n\n'
    b": keep-alive comment\n\n"
    b"data: line one\ndata: line two\n\n"
    b"data: [DONE]\n\n"
)


def decode(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.flush()


def test_whole_stream_in_one_chunk() -> None:
    events = decode([STREAM])
    assert [e.data for e in events] == [
        b'{"a":1}',
        b'{"type":"response.created"}',
        None,
        b"line one\nline two",
        b"[DONE]",
    ]
    assert events[1].event == "response.created"
    assert b"".join(e.raw for e in events) == STREAM


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert decode(chunks) == decode([STREAM])


@given(
    st.lists(st.integers(min_value=0, max_value=200), max_size=12),
    st.sampled_from([b"\r\n", b"\r"]),
)
def test_crlf_and_cr_line_endings_split_anywhere(cuts: list[int], ending: bytes) -> None:
    crlf = STREAM.replace(b"\n", ending)
    points = sorted({c for c in cuts if c <= len(crlf)})
    chunks = [crlf[a:b] for a, b in zip([0, *points], [*points, len(crlf)], strict=True)]
    assert decode(chunks) == decode([STREAM])


def test_unterminated_last_event_is_flushed() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: tail") == []
    (event,) = decoder.flush()
    assert event.data == b"tail"
    assert event.raw == b"data: tail\n\n"


def test_field_without_space_and_frame_round_trip() -> None:
    assert parse_block(b"data:x").data == b"x"
    assert parse_block(frame(b"{}", "error")) == SSEEvent(
        b"event: error\ndata: {}\n\n", "error", b"{}"
    )


def reference(block: bytes) -> tuple[str | None, bytes | None]:
    """The spec's field reading, line by line, for comparing with the decoder's shortcuts."""
    event, data = None, []
    for line in block.strip(b"\n").split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
    return event, b"\n".join(data) if data else None


LINES = st.sampled_from(
    [b"event: message_start", b"event:x", b"event: ", b"data: {}", b"data:{}", b"data: a b",
     b"data: ", b": ping", b"id: 1", b"event: content_block_delta"]
)  # fmt: skip


@given(st.lists(LINES, min_size=1, max_size=4))
def test_named_event_shortcut_reads_fields_as_the_spec_does(lines: list[bytes]) -> None:
    block = b"\n".join(lines)
    parsed = parse_block(block)
    assert (parsed.event, parsed.data) == reference(block)
    assert parse_block(b"event: message_stop\ndata: {}") == SSEEvent(
        b"event: message_stop\ndata: {}\n\n", "message_stop", b"{}"
    )
