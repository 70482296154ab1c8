"""Answers of every shape the runtime contract allows, picked by the event's `case`.

Run under both response modes: streaming (the default) and buffered.
"""

from __future__ import annotations

import base64
from typing import Any

from closing import ClosingBody


def handler(event: dict[str, Any], context: object) -> Any:
    case = event["case"]
    log = event.get("close_log")
    if case == "plain":
        return {"ok": True, "items": [1, 2, 3]}
    if case == "sse":
        pieces = [b"data: one\n\n", b"", b"data: two\n\n", b"", b"data: [DONE]\n\n"]
        return {
            "statusCode": 200,
            "headers": {"content-type": "text/event-stream"},
            "cookies": ["a=1; Path=/", "b=2; Path=/"],
            "body": ClosingBody(pieces, log),
        }
    if case == "binary":
        return {
            "statusCode": 201,
            "headers": {"content-type": "application/octet-stream"},
            "body": ClosingBody([b"\xff\x00\xfe", b"\x01"], log),
        }
    if case == "rest":
        return {
            "statusCode": 429,
            "headers": {"content-type": "application/json"},
            "multiValueHeaders": {"set-cookie": ["a=1", "b=2"]},
            "body": b'{"error":{"message":"slow down"}}',
        }
    if case == "base64_text":
        return {
            "statusCode": 200,
            "headers": {},
            "body": base64.b64encode(b"decoded bytes").decode(),
            "isBase64Encoded": True,
        }
    if case == "empty":
        return {"statusCode": 204, "headers": {}}
    raise AssertionError(f"unknown case {case!r}")
