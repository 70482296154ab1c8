"""Streams server-sent events, one piece per event: 1,000 by default, then `data: [DONE]`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from closing import ClosingBody


def sse_events(count: int) -> Iterator[bytes]:
    for n in range(count):
        yield f'id: {n}\ndata: {{"n": {n}}}\n\n'.encode()
    yield b"data: [DONE]\n\n"


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"content-type": "text/event-stream", "cache-control": "no-cache"},
        "cookies": [],
        "body": ClosingBody(sse_events(int(event.get("count", 1000))), event.get("close_log")),
    }
