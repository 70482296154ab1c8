"""Writing the local door's answers: HTTP/1.1 framing, one send per piece, streamed at once.

A whole answer (head and body) leaves in one send. A streamed answer sends its head, then each
chunk the core yields as one HTTP chunk in its own send, at once, then the last chunk; an
HTTP/1.0 client gets the chunks as they are and the connection's end ends the body. Every
write can raise OSError (the client is gone): the caller closes the answer then, which is how
the core learns of it.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Protocol

from mantle_gateway.messages import GatewayResponse

_UNSAFE = frozenset("\r\n\x00")
_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
_date: tuple[int, bytes] = (0, b"")


class Writes(Protocol):
    def write(self, data: bytes, /) -> object: ...


def write_answer(
    out: Writes, response: GatewayResponse, *, head_only: bool, http10: bool, close: bool
) -> None:
    """`head_only`: the request was HEAD. `close`: the connection ends after this answer."""
    status = response.status
    lines = [b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b""))]
    lines += [
        f"{name}: {value}".encode("latin-1", "replace")
        for name, value in response.headers
        if _UNSAFE.isdisjoint(name) and _UNSAFE.isdisjoint(value)
    ]
    lines.append(b"date: " + _http_date())
    if close:
        lines.append(b"connection: close")
    bodiless = status in (204, 304) or head_only
    body = response.body
    if isinstance(body, bytes):
        if status not in (204, 304):
            lines.append(b"content-length: %d" % len(body))
        out.write(b"\r\n".join(lines) + b"\r\n\r\n" + (b"" if bodiless else body))
        return
    chunked = not http10
    if chunked and status not in (204, 304):
        lines.append(b"transfer-encoding: chunked")
    out.write(b"\r\n".join(lines) + b"\r\n\r\n")
    if bodiless:
        return
    write = out.write
    for chunk in body:
        if chunk:
            write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
    if chunked:
        write(b"0\r\n\r\n")


def _http_date() -> bytes:
    """The `date` header's value, formatted once a second."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, formatdate(now, usegmt=True).encode())
    return _date[1]
