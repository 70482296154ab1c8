"""What the simulator saw: one `SeenRequest` per request, kept for the tests to inspect.

Tests of the gateway assert on what reached "Mantle" (the signed headers, the forwarded query
string, the body bytes, the prefix chosen), so every request is recorded, refused ones included,
before any answer is sent: once a client has its answer, the record is there.

Only the recent ones are kept (`RequestLog`): at most `max_requests` records and `max_body_bytes`
of their bodies, the oldest dropped first, so a simulator serving an agent for a day stays
small. `count` keeps counting every request seen, dropped ones included.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from .faults import Fault


@dataclass(frozen=True, slots=True)
class SeenRequest:
    method: str
    path: str
    """As on the request line, still percent-encoded, without the query string."""
    query: str
    """The raw query string without `?` ("" when there was none)."""
    headers: dict[str, str]
    """Lower-cased names; repeated headers joined with ", "."""
    body: bytes
    signature_ok: bool
    """True when the SigV4 signature (or the configured bearer token) was accepted."""
    signature_error: str | None
    """Why the request was refused before authentication succeeded (the 401 body's message)."""
    request_id: str = ""
    """The `x-request-id` the simulator answered with."""
    fault: Fault | None = None
    """The injected fault this request consumed, if any."""
    peer: str = ""
    """The client's `host:port`: the same value on two requests means a reused connection."""

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


MAX_RECENT_REQUESTS = 1_000
MAX_RECENT_BODY_BYTES = 16 * 1024 * 1024


class RequestLog:
    """The most recent requests, numbered from 0 in the order they were recorded."""

    def __init__(
        self, max_requests: int = MAX_RECENT_REQUESTS, max_body_bytes: int = MAX_RECENT_BODY_BYTES
    ) -> None:
        self.max_requests = max_requests
        self.max_body_bytes = max_body_bytes
        self._lock = threading.Lock()
        self._recent: deque[SeenRequest] = deque()
        self._count = 0
        self._body_bytes = 0

    def add(self, seen: SeenRequest) -> None:
        with self._lock:
            self._recent.append(seen)
            self._count += 1
            self._body_bytes += len(seen.body)
            while len(self._recent) > 1 and (
                len(self._recent) > self.max_requests or self._body_bytes > self.max_body_bytes
            ):
                self._body_bytes -= len(self._recent.popleft().body)

    @property
    def count(self) -> int:
        """Requests recorded since the start (or the last `clear`), dropped ones included."""
        with self._lock:
            return self._count

    def recent(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._recent)

    def since(self, count: int) -> list[SeenRequest]:
        """The requests recorded after the first `count` (a former `count`), as far as kept."""
        with self._lock:
            first_kept = self._count - len(self._recent)
            return list(self._recent)[max(0, count - first_kept) :]

    @property
    def body_bytes(self) -> int:
        with self._lock:
            return self._body_bytes

    def clear(self) -> None:
        with self._lock:
            self._recent.clear()
            self._count = 0
            self._body_bytes = 0
