"""The Lambda doors called as the streaming runtime calls them, without starting the runtime:
`lambda_entry.handle_event`, then the body read piece by piece and closed once."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mantle_gateway.doors import lambda_entry
from mantle_gateway.doors.lambda_entry import Gateway

EVENTS = Path(__file__).resolve().parent / "events"


@dataclass
class LambdaContext:
    """The two members of Lambda's context a door reads."""

    remaining_ms: int = 300_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def invoke(gateway: Gateway, event: dict[str, Any], context: LambdaContext) -> tuple[Any, bytes]:
    """Run the handler and read its body like the runtime: every piece, then close once."""
    result = lambda_entry.handle_event(event, context, gateway)
    body = result["body"]
    pieces: list[bytes] = []
    try:
        pieces.extend(body)
    finally:
        body.close()
    return result, b"".join(pieces)


def function_url_event(path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    """A Function URL (payload 2.0) POST of `body` to `path` with `key` as Bearer."""
    event: dict[str, Any] = json.loads((EVENTS / "function_url_chat_stream.json").read_text())
    raw = json.dumps(body)
    event["rawPath"] = path
    event["requestContext"]["http"]["path"] = path
    event["headers"]["authorization"] = f"Bearer {key}"
    event["headers"]["content-length"] = str(len(raw))
    event["body"] = raw
    return event


def rest_event(key: str, body: dict[str, Any]) -> dict[str, Any]:
    """A REST API proxy (v1) POST of `body` to `/openai/v1/chat/completions`, `key` as Bearer."""
    event: dict[str, Any] = json.loads((EVENTS / "rest_api_chat_stream.json").read_text())
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    event.update(
        headers=headers,
        multiValueHeaders={name: [value] for name, value in headers.items()},
        queryStringParameters=None,
        multiValueQueryStringParameters=None,
        body=json.dumps(body),
    )
    return event
