"""Incremental server-sent-events decoder: bytes in, whole events out.

Splitting lines across network chunks is kept apart from reading fields (httpx-sse's habit): a
chunk may end in the middle of an event, of a line, or between the CR and LF of one line ending.
Line endings are normalized to LF, so each event's `raw` bytes are the event exactly as a client
should receive it, ready to forward. Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html
"""

from __future__ import annotations

from typing import NamedTuple


class SSEEvent(NamedTuple):
    raw: bytes
    """The whole event block, LF line endings, terminated by one blank line."""
    event: str | None
    """The `event:` field, if the block had one."""
    data: bytes | None
    """The `data:` lines joined with LF; None when the block had no data field."""


class SSEDecoder:
    def __init__(self) -> None:
        self._buffer = b""
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Return the events this chunk completes; keep the unfinished tail for the next one."""
        if self._pending_cr or b"\r" in chunk:
            chunk = self._normalize(chunk)
        if not self._buffer and chunk.find(b"\n\n") == len(chunk) - 2 >= 0:
            # The usual case, one whole event per chunk: no buffering, no splitting.
            if chunk.startswith(b"data: ") and chunk.find(b"\n") == len(chunk) - 2:
                return [SSEEvent(chunk, None, chunk[6:-2])]
            return [parse_block(chunk)] if chunk.strip(b"\n") else []
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\n\n" not in buffer:
            self._buffer = buffer
            return []
        blocks = buffer.split(b"\n\n")
        self._buffer = blocks.pop()
        return [parse_block(block) for block in blocks if block.strip(b"\n")]

    def flush(self) -> list[SSEEvent]:
        """The stream ended: an event missing its final blank line still counts."""
        tail, self._buffer = self._buffer, b""
        self._pending_cr = False
        return [parse_block(tail)] if tail.strip(b"\n") else []

    def _normalize(self, chunk: bytes) -> bytes:
        if self._pending_cr:
            self._pending_cr = False
            if not chunk.startswith(b"\n"):
                chunk = b"\n" + chunk  # the held CR was a line ending of its own
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]  # wait: the next chunk may start with the LF of a CRLF
            self._pending_cr = True
        return chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def parse_block(block: bytes) -> SSEEvent:
    block = block.strip(b"\n")
    raw = block + b"\n\n"
    if block.startswith(b"data: ") and b"\n" not in block:
        return SSEEvent(raw, None, block[6:])  # the common case: one data line
    if block.startswith(b"event: "):
        # Anthropic's (and named Responses) frames: one event line, then one data line.
        end = block.find(b"\n")
        if end > 0 and block.startswith(b"data: ", end + 1) and b"\n" not in block[end + 1 :]:
            return SSEEvent(raw, block[7:end].decode("utf-8", "replace"), block[end + 7 :])
    event: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
    return SSEEvent(raw, event, b"\n".join(data) if data else None)


def frame(data: bytes, event: str | None = None) -> bytes:
    """Encode one event; `data` must not contain a line break (JSON from json.dumps never does)."""
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + data + b"\n\n"
