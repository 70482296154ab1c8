"""Forward an upstream SSE stream to the client event by event, reading usage on the way.

Bytes are forwarded as each event completes (never buffered to the end). On the way the relay
- reads usage from the chat usage chunk or the Responses terminal event;
- drops the usage chunk the gateway asked for itself (chat without `include_usage`), so the
  client sees exactly the stream it asked for while every stream is still metered;
- adds `event: <type>` lines to data-only Responses frames (strict clients key off them);
- reports the stored-response id the first time it appears, before forwarding that event;
- ends a broken or cut stream with one SSE error event and `data: [DONE]`.
Those are the OpenAI surfaces; another API family brings its own `EventReader` (Anthropic
Messages: `anthropic_events`), which reads each event and writes the error tail its way.
When the door closes it — after the last byte, or early because the client went away — it calls
`on_finish` once with what it observed, so usage is recorded in every case, and never while the
client still waits for the end of the body.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from mantle_gateway.stream.sse import SSEDecoder, SSEEvent, frame
from mantle_gateway.upstream.client import StreamBroken
from mantle_gateway.usage import (
    InvalidUsage,
    TokenCounts,
    from_chat_usage,
    from_responses_usage,
    parse_upstream_json,
)

DONE = b"data: [DONE]\n\n"
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_DEADLINE_MARGIN = 0.5


@dataclass(slots=True)
class Observation:
    tokens: TokenCounts | None = None
    response_id: str | None = None
    events: int = 0
    """Data events forwarded, the output estimate when the upstream never reported usage."""
    ended: bool = False
    """The upstream finished properly ([DONE] or a terminal Responses event)."""
    outcome: str | None = None
    """None when complete; else why not: client_disconnected, upstream_dropped, deadline, …"""
    usage_invalid: bool = False
    """The upstream sent usage whose numbers cannot be billed (`tokens` is then None)."""
    status: str | None = None
    """The `status` of the response in a terminal Responses event (completed, failed, …)."""
    estimated: bool = False
    """`tokens` holds the input but not yet the final output count (a stream cut short may
    never report it): the output is then estimated from `events`."""


class EventReader(Protocol):
    """An API family's reading of its own stream: forward each event (changed or not) while
    noting usage in the observation, and write the one error event that ends a broken stream."""

    def event(self, event: SSEEvent) -> bytes: ...

    def error_tail(self, code: str, message: str) -> bytes: ...


class Relay:
    def __init__(
        self,
        chunks: Iterator[bytes],
        *,
        surface: str,
        reader: Callable[[Observation], EventReader] | None = None,
        strip_usage: bool = False,
        on_response_id: Callable[[str], object] | None = None,
        on_finish: Callable[[Observation], None],
        deadline: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._chunks = chunks
        self._chat = surface == "chat_completions"
        self._strip_usage = strip_usage
        self._on_response_id = on_response_id
        self._on_finish = on_finish
        self._deadline = deadline
        self._clock = clock
        self.observed = Observation()
        self._handle: Callable[[SSEEvent], bytes]
        self._tail: Callable[[str, str], bytes]
        if reader is not None:
            events = reader(self.observed)
            self._handle, self._tail = events.event, events.error_tail
        else:
            self._handle = self._chat_event if self._chat else self._responses_event
            self._tail = self._error_tail
        self._gen = self._run()
        self._finished = False

    def __iter__(self) -> Relay:
        return self

    def __next__(self) -> bytes:
        return next(self._gen)

    def close(self) -> None:
        try:
            self._gen.close()
        finally:
            if not self._finished:
                self._finished = True
                self._on_finish(self.observed)

    def _run(self) -> Generator[bytes, None, None]:
        obs = self.observed
        decoder = SSEDecoder()
        try:
            try:
                for chunk in self._chunks:
                    out = self._process(decoder.feed(chunk))
                    if out:
                        yield out
                    if self._out_of_time():
                        obs.outcome = "deadline"
                        yield self._tail("deadline", "The gateway's time limit was reached.")
                        return
                out = self._process(decoder.flush())
                if out:
                    yield out
                if not obs.ended:
                    obs.outcome = "upstream_ended_early"
                    yield self._tail(obs.outcome, "The upstream ended the stream early.")
            except StreamBroken as broken:
                obs.outcome = broken.reason
                yield self._tail(broken.reason, "The upstream stream broke off.")
        except GeneratorExit:
            obs.outcome = obs.outcome or "client_disconnected"
            raise
        finally:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()

    def _out_of_time(self) -> bool:
        if self._deadline is None or self._clock is None:
            return False
        return self._clock() > self._deadline - _DEADLINE_MARGIN

    def _process(self, events: list[SSEEvent]) -> bytes:
        handle = self._handle
        if len(events) == 1:
            return handle(events[0])
        return b"".join(handle(event) for event in events)

    def _chat_event(self, event: SSEEvent) -> bytes:
        data = event.data
        if data is None:
            return event.raw
        if data == b"[DONE]":
            self.observed.ended = True
            return event.raw
        self.observed.events += 1
        if b'"usage"' not in data or b'"usage":null' in data or b'"usage": null' in data:
            return event.raw
        chunk = parse_upstream_json(data)
        if chunk is None:
            return event.raw
        self._take_usage(from_chat_usage, chunk.get("usage"))
        if not self._strip_usage:
            return event.raw
        self.observed.events -= 1
        if chunk.get("choices") == []:
            return b""  # the usage chunk the client did not ask for
        chunk["usage"] = None
        return frame(json.dumps(chunk, separators=(",", ":")).encode())

    def _responses_event(self, event: SSEEvent) -> bytes:
        data = event.data
        if data is None:
            return event.raw
        self.observed.events += 1
        kind = event.event or event_type(data)
        if kind in _TERMINAL or (self.observed.response_id is None and kind == "response.created"):
            self._read_response(data, terminal=kind in _TERMINAL)
        if event.event is None and kind:
            return b"event: " + kind.encode() + b"\n" + event.raw
        return event.raw

    def _read_response(self, data: bytes, *, terminal: bool) -> None:
        payload = parse_upstream_json(data)
        response = payload.get("response") if payload else None
        if not isinstance(response, dict):
            return
        response_id = response.get("id")
        if isinstance(response_id, str) and self.observed.response_id is None:
            self.observed.response_id = response_id
            if self._on_response_id is not None:
                self._on_response_id(response_id)
        if terminal:
            self.observed.ended = True
            status = response.get("status")
            self.observed.status = status if isinstance(status, str) else None
            self._take_usage(from_responses_usage, response.get("usage"))

    def _take_usage(self, read: Callable[[Any], TokenCounts | None], usage: Any) -> None:
        """Keep the latest usage the upstream sent; bad numbers count as none, flagged."""
        try:
            tokens = read(usage)
        except InvalidUsage:
            self.observed.tokens, self.observed.usage_invalid = None, True
            return
        if tokens is not None:
            self.observed.tokens, self.observed.usage_invalid = tokens, False

    def _error_tail(self, code: str, message: str) -> bytes:
        if self._chat:
            error = {
                "error": {"message": message, "type": "upstream_error", "code": code, "param": None}
            }
            return frame(json.dumps(error).encode()) + DONE
        event = {"type": "error", "code": code, "message": message, "param": None}
        return frame(json.dumps(event).encode(), "error") + DONE


def event_type(data: bytes) -> str | None:
    """The `type` of an event's JSON data (Responses and Anthropic events both carry one)."""
    if data.startswith(b'{"type":"'):
        end = data.find(b'"', 9)
        if end > 9:
            return data[9:end].decode("utf-8", "replace")
    payload = parse_upstream_json(data)
    kind = payload.get("type") if payload else None
    return kind if isinstance(kind, str) else None
