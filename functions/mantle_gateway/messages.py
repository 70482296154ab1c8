"""The two shapes every door speaks: what came in, what goes out.

The core never sees a Lambda event or a socket; a door builds a `GatewayRequest`, hands it to
`Gateway.handle`, and writes the `GatewayResponse` its own way. Whatever the body, the door MUST
call `GatewayResponse.close()` once it has sent what it could: for a streamed body, closing before
the end is how the core learns the client went away; for every body, it is when the core records
usage, so the client has its last byte before the gateway spends time on the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol


class ByteStream(Protocol):
    """A body that arrives in chunks; `close()` ends it early (client gone)."""

    def __iter__(self) -> Iterator[bytes]: ...

    def __next__(self) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class GatewayRequest:
    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Header names lower-cased; repeated headers joined with ", " (see `normalize_headers`)."""
    body: bytes = b""
    door: str = "local"
    """Which door took the request: "local", "function_url" or "rest_api" (recorded in usage)."""
    deadline: float | None = None
    """Epoch seconds by which the whole answer must be sent (Lambda's remaining time)."""
    max_silence: float | None = None
    """Seconds the door may go without sending a byte, if it has such a limit (the REST door:
    a regional REST API ends a response that is silent for 5 minutes)."""
    request_id: str = ""
    """The door's own request id if it has one (Lambda's); the core makes one otherwise."""


@dataclass(slots=True)
class GatewayResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes | ByteStream = b""
    on_close: Callable[[], None] | None = None
    """Run once by `close()`, after the body was sent (the core records usage here)."""

    @property
    def streaming(self) -> bool:
        return not isinstance(self.body, bytes)

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def close(self) -> None:
        try:
            if not isinstance(self.body, bytes):
                self.body.close()
        finally:
            callback, self.on_close = self.on_close, None
            if callback is not None:
                callback()


def normalize_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case names and join repeats the way RFC 9110 §5.3 allows (cookies with "; ")."""
    out: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        if key in out:
            out[key] = out[key] + ("; " if key == "cookie" else ", ") + value
        else:
            out[key] = value
    return out
