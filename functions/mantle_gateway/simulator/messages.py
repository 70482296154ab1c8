"""The Anthropic Messages surface of Mantle (`/anthropic/v1/messages[/count_tokens]`).

Shapes follow Anthropic's API reference ("Messages", "Streaming Messages", "Errors"), which the
official `anthropic` SDK and Claude Code parse: a `message` object whose `usage` counts
`input_tokens` apart from `cache_read_input_tokens` and `cache_creation_input_tokens`; a stream
of `event:`-named frames from `message_start` (input usage) to `message_stop`, with the output
count, cumulative, in `message_delta`; errors as `{"type":"error","error":{"type","message"}}`.
Mantle requires the `anthropic-version` header (Bedrock user guide, "Inference using Anthropic
Messages API"), so a request without it is refused with 400 as Anthropic refuses it.

An answer runs to `message_tokens` tokens and ends (`end_turn`), unless `max_tokens` stops it
sooner (`max_tokens`): `max_tokens` is a required cap here, and clients such as Claude Code send
a large one (64000) that a real model rarely reaches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from . import formats
from .formats import JSON

MAX_TOKENS_LIMIT = 1_000_000
VERSION_HEADER = "anthropic-version"

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class MessagesKnobs(Protocol):
    """The simulator settings a Messages answer depends on."""

    message_tokens: int
    cached_tokens: int
    cache_write_tokens: int


def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status (its "Errors" page), `api_error` otherwise."""
    return _ERROR_TYPES.get(status, "api_error")


def error_body(status: int, message: str) -> bytes:
    return formats.dumps(
        {"error": {"message": message, "type": error_type(status)}, "type": "error"}
    )


class MessagesError(Exception):
    """A refusal in Anthropic's shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class MessagesUsage:
    input_tokens: int
    output_tokens: int
    cache_read: int = 0
    cache_write: int = 0

    def as_json(self, output_tokens: int | None = None) -> JSON:
        return {
            "cache_creation_input_tokens": self.cache_write,
            "cache_read_input_tokens": self.cache_read,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens if output_tokens is None else output_tokens,
        }


def check_version(headers: Mapping[str, str]) -> None:
    if not headers.get(VERSION_HEADER):
        raise MessagesError(400, f"{VERSION_HEADER}: header is required")


def prompt_tokens(body: JSON) -> int:
    """Words of the system prompt and the messages: the simulator's tokenizer."""
    return max(
        1, formats.count_words(body.get("system")) + formats.count_words(body.get("messages"))
    )


def _required(body: JSON) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise MessagesError(400, "model: Field required")
    if not isinstance(body.get("messages"), list):
        raise MessagesError(400, "messages: Field required")
    return model


def count_tokens(headers: Mapping[str, str], body: JSON) -> JSON:
    check_version(headers)
    _required(body)
    return {"input_tokens": prompt_tokens(body)}


@dataclass(frozen=True, slots=True)
class Planned:
    """What one Messages request will answer: its length, why it stops, its usage."""

    model: str
    count: int
    stop_reason: str
    usage: MessagesUsage
    stream: bool


def plan(knobs: MessagesKnobs, headers: Mapping[str, str], body: JSON) -> Planned:
    check_version(headers)
    model = _required(body)
    cap = body.get("max_tokens")
    if cap is None:
        raise MessagesError(400, "max_tokens: Field required")
    if not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= MAX_TOKENS_LIMIT:
        raise MessagesError(400, f"max_tokens: must be an integer from 1 to {MAX_TOKENS_LIMIT}")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise MessagesError(400, "stream: Input should be a valid boolean")
    count = min(cap, knobs.message_tokens)
    usage = MessagesUsage(
        input_tokens=prompt_tokens(body),
        output_tokens=count,
        cache_read=knobs.cached_tokens,
        cache_write=knobs.cache_write_tokens,
    )
    stop = "max_tokens" if cap < knobs.message_tokens else "end_turn"
    return Planned(model, count, stop, usage, stream)


def message(message_id: str, planned: Planned) -> JSON:
    return {
        "content": [{"text": formats.answer_text(planned.count), "type": "text"}],
        "id": message_id,
        "model": planned.model,
        "role": "assistant",
        "stop_reason": planned.stop_reason,
        "stop_sequence": None,
        "type": "message",
        "usage": planned.usage.as_json(),
    }


def frame(event: str, data: JSON) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + formats.dumps(data) + b"\n\n"


def stream(message_id: str, planned: Planned) -> Iterator[bytes]:
    """The frames of a streamed message, `message_start` to `message_stop`."""
    start: dict[str, Any] = {
        **message(message_id, planned),
        "content": [],
        "stop_reason": None,
        "usage": planned.usage.as_json(output_tokens=1),
    }
    yield frame("message_start", {"message": start, "type": "message_start"})
    yield frame(
        "content_block_start",
        {"content_block": {"text": "", "type": "text"}, "index": 0, "type": "content_block_start"},
    )
    yield frame("ping", {"type": "ping"})
    marker = "\x00"
    head, tail = frame(
        "content_block_delta",
        {
            "delta": {"text": marker, "type": "text_delta"},
            "index": 0,
            "type": "content_block_delta",
        },
    ).split(formats.dumps(marker))
    for index in range(planned.count):
        yield head + formats.dumps(formats.token(index)) + tail
    yield frame("content_block_stop", {"index": 0, "type": "content_block_stop"})
    yield frame(
        "message_delta",
        {
            "delta": {"stop_reason": planned.stop_reason, "stop_sequence": None},
            "type": "message_delta",
            "usage": {"output_tokens": planned.count},
        },
    )
    yield frame("message_stop", {"type": "message_stop"})
