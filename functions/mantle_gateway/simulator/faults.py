"""Failures a test can ask the simulator to produce, one request at a time.

The gateway's hardest paths are the ones a healthy upstream never takes: slow first bytes,
streams cut in the middle, throttling with `retry-after`, the wrong-prefix refusal, a reset
connection, usage numbers no bill can carry. Each fault is a small dataclass; `FaultQueue`
hands each one to the first later request it matches (FIFO), then forgets it.

Every fault may be narrowed with `path` (the full path such as `/v1/chat/completions`, or the
path after the prefix such as `/chat/completions`) and `model` (the body's `model`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class Fault:
    """Base of every fault: the optional filters deciding which request it applies to."""

    path: str | None = None
    model: str | None = None

    def matches(self, full_path: str, route_path: str, model: str | None) -> bool:
        if self.path is not None and self.path not in (full_path, route_path):
            return False
        return self.model is None or self.model == model


@dataclass(frozen=True, kw_only=True)
class DelayHeaders(Fault):
    """Wait `seconds` before sending the status line (a slow first byte / upstream timeout)."""

    seconds: float


@dataclass(frozen=True, kw_only=True)
class SlowStream(Fault):
    """Wait `event_delay` seconds between stream events (added to the simulator's own delay)."""

    event_delay: float


@dataclass(frozen=True, kw_only=True)
class DropMidStream(Fault):
    """Send `after_events` SSE events, then close the socket without the final empty chunk.

    The client sees an incomplete chunked body (a protocol error), as when an upstream dies.
    On a non-streaming request the connection is closed before any answer.
    """

    after_events: int


@dataclass(frozen=True, kw_only=True)
class ErrorAnswer(Fault):
    """Answer `status` with `body` and `headers`, verbatim, instead of doing the work.

    `body` may be a JSON-able mapping, text or bytes; left out, an OpenAI-shaped error that
    fits the status is sent. Example: `ErrorAnswer(status=429, headers={"retry-after": "7"})`.
    """

    status: int
    body: Mapping[str, object] | str | bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class WrongRoute(Fault):
    """Refuse once with Mantle's 400 "model `…` isn't supported on this route"."""


@dataclass(frozen=True, kw_only=True)
class BadUsage(Fault):
    """Answer as usual, but write `value` — raw JSON text such as `NaN`, `Infinity`, `1e45`,
    `-3`, `2.5` or `"7"` — in place of every count named in `fields`, wherever the answer
    reports usage: a whole answer, the chat usage chunk, the terminal Responses event, a stored
    response read back. A faulty upstream's usage, for the gateway's validation to refuse."""

    value: str
    fields: tuple[str, ...] = ("prompt_tokens", "input_tokens")


@dataclass(frozen=True, kw_only=True)
class ResetConnection(Fault):
    """Close the socket (TCP reset) before any byte of an answer is sent."""


class FaultQueue:
    """Thread-safe FIFO of faults; `take` removes and returns the first one that matches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def put(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, full_path: str, route_path: str, model: str | None) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(full_path, route_path, model):
                    return self._faults.pop(index)
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
