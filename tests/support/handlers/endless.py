"""Streams until the runtime stops pulling (`count` events at most), for the dropped-connection
test: when Lambda cuts the response connection the runtime must close the body and move on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from closing import ClosingBody


def _events(count: int) -> Iterator[bytes]:
    for n in range(count):
        yield b"data: " + str(n).encode() + b" " + b"x" * 4096 + b"\n\n"


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    body = ClosingBody(_events(int(event.get("count", 100_000))), event.get("close_log"))
    return {"statusCode": 200, "headers": {"content-type": "text/event-stream"}, "body": body}
