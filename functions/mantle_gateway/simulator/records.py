"""What the simulator saw: one `SeenRequest` per request, kept for the tests to inspect.

Tests of the gateway assert on what reached "Mantle" (the signed headers, the forwarded query
string, the body bytes, the prefix chosen), so every request is recorded, refused ones included,
before any answer is sent: once a client has its answer, the record is there.
"""

from __future__ import annotations

import json
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
