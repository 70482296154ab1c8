"""Fails in the place the event names, so each error path of the runtime can be watched.

handler        the handler itself raises: nothing was sent, so /error
first_piece    the body raises before its first piece: still /error
mid_stream     two events out, then the body raises: zero chunk + error trailers
bad_status     the answer breaks the contract (statusCode not an int): /error
big_prelude    headers too large for the 16 KB prelude bound: /error
unserializable a plain result json cannot encode: /error, Runtime.MarshalError
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from closing import ClosingBody


class UpstreamParserError(RuntimeError):
    pass


def _fail_first() -> Iterator[bytes]:
    raise UpstreamParserError("failed before the first event")
    yield b""  # pragma: no cover - makes this a generator


def _fail_mid_stream() -> Iterator[bytes]:
    yield b"data: one\n\n"
    yield b"data: two\n\n"
    raise UpstreamParserError("upstream parser exploded")


def handler(event: dict[str, Any], context: object) -> Any:
    where = event["where"]
    log = event.get("close_log")
    answer: dict[str, Any] = {"statusCode": 200, "headers": {"content-type": "text/event-stream"}}
    if where == "handler":
        raise ValueError("handler refused the event")
    if where == "first_piece":
        return {**answer, "body": ClosingBody(_fail_first(), log)}
    if where == "mid_stream":
        return {**answer, "body": ClosingBody(_fail_mid_stream(), log)}
    if where == "bad_status":
        return {**answer, "statusCode": "200", "body": ClosingBody([b"x"], log)}
    if where == "big_prelude":
        headers = {f"x-filler-{n}": "y" * 100 for n in range(200)}
        return {**answer, "headers": headers, "body": ClosingBody([b"x"], log)}
    if where == "unserializable":
        return {"not json": object()}
    raise AssertionError(f"unknown case {where!r}")
