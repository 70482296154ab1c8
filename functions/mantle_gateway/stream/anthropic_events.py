"""Reading an Anthropic Messages stream on its way through the relay.

Anthropic's "Streaming Messages" format names every event (`event: message_start`, …): the
input usage (fresh input, cache reads, cache writes) arrives in `message_start.message.usage`,
the output count in `message_delta.usage`, cumulative, and `message_stop` ends the message. An
`error` event is the upstream's own end of a failed stream. Events are forwarded as they came;
one without an `event:` line gets it added, since the SDKs dispatch on that line alone.

Until `message_delta` arrives the output is unknown: the reader marks the usage `estimated` and
counts the text deltas seen, so a stream cut short is billed its known input and an estimate of
its output.
"""

from __future__ import annotations

import json
from typing import Any

from mantle_gateway.stream.relay import Observation, event_type
from mantle_gateway.stream.sse import SSEEvent, frame
from mantle_gateway.usage import InvalidUsage, from_messages_usage, parse_upstream_json

_USAGE_EVENTS = frozenset({"message_start", "message_delta"})


class MessagesEvents:
    def __init__(self, observed: Observation) -> None:
        self.observed = observed
        self._usage: dict[str, Any] = {}
        """message_start's usage, overlaid with each message_delta's (cumulative) counts."""

    def event(self, event: SSEEvent) -> bytes:
        data = event.data
        if data is None:
            return event.raw
        kind = event.event or event_type(data)
        if kind == "content_block_delta":
            self.observed.events += 1
        elif kind in _USAGE_EVENTS:
            self._read_usage(kind, data)
        elif kind == "message_stop":
            self.observed.ended = True
        elif kind == "error":
            # Mantle ended the stream with its own error event: nothing to add after it.
            self.observed.ended = True
            self.observed.outcome = "upstream_error"
        if event.event is None and kind:
            return b"event: " + kind.encode() + b"\n" + event.raw
        return event.raw

    def _read_usage(self, kind: str, data: bytes) -> None:
        payload = parse_upstream_json(data)
        holder = payload.get("message") if kind == "message_start" and payload else payload
        usage = holder.get("usage") if isinstance(holder, dict) else None
        if not isinstance(usage, dict):
            return
        self._usage.update((k, v) for k, v in usage.items() if v is not None)
        try:
            self.observed.tokens = from_messages_usage(self._usage)
        except InvalidUsage:  # billed as if the upstream had sent none (metering estimates)
            self.observed.tokens = None
            self.observed.usage_invalid = True
            return
        self.observed.estimated = kind == "message_start"

    @staticmethod
    def error_tail(code: str, message: str) -> bytes:
        """Anthropic's mid-stream error event: `api_error` with the gateway's reason."""
        error = {"type": "error", "error": {"type": "api_error", "message": f"{message} ({code})"}}
        return frame(json.dumps(error, separators=(",", ":")).encode(), "error")
