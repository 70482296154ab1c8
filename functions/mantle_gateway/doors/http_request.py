"""Reading HTTP/1.1 requests off a client socket for the local door: strict, capped, timed.

h11 is the parser (request line, header fields, Host, Content-Length, the body by its length).
Before h11 sees a head, this module finds the head's end and applies what a server decides and
h11 leaves open, or lets through:
- caps: the request line (414), each header line, the number of header lines and the whole head
  (431), checked while the head arrives, so a client cannot make the door hold more than that;
- RFC 9112 refusals (400, and the connection closed): obsolete line folding (§5.2) is refused,
  not unfolded; a Content-Length that is repeated or not one plain number, and Transfer-Encoding
  beside a Content-Length (§6.3: the request-smuggling shapes); Transfer-Encoding alone gets 411:
  chunked request bodies are not accepted (every OpenAI and Anthropic SDK sends Content-Length);
- a header value holding NUL, CR, VT or FF (a line h11 would refuse as malformed) is refused
  naming the header, as the core refuses a value it cannot forward;
- bytes outside visible ASCII in the request target are percent-encoded before parsing (§3.2
  lets a server treat such a target as properly encoded), so the path reaches the router and
  gets its 404 instead of a parser error;
- empty lines before a request line are skipped (§2.2).

Deadlines: the wait for a request's first byte is bounded by the idle timeout (the connection
then closes quietly); from that byte on, head and body must arrive within the request timeout
however slowly they trickle in (408), which is what makes a slow-loris client harmless.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import h11

from mantle_gateway.errors import (
    GatewayError,
    HeadersTooLargeError,
    HttpVersionError,
    InvalidRequestError,
    LengthRequiredError,
    RequestTimeoutError,
    Shape,
    UriTooLongError,
    shape_for,
)
from mantle_gateway.messages import GatewayRequest, normalize_headers

_HEAD_END = re.compile(rb"\n\r?\n")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
_NOT_IN_A_VALUE = re.compile(rb"[\x00\r\x0b\x0c]")
_NOT_VISIBLE_ASCII = re.compile(rb"[^\x21-\x7e]")
_LENGTH = re.compile(rb"[ \t]*([0-9]{1,15})[ \t]*")
_RECEIVE = 65536
_MALFORMED = "The request is not valid HTTP/1.1."
IDLE_TIMEOUT = 30.0
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Limits:
    max_body: int
    request_line: int = 16 * 1024
    header_line: int = 64 * 1024
    header_count: int = 100
    head: int = 128 * 1024
    """The whole head, request line included."""
    idle_timeout: float = IDLE_TIMEOUT
    """Seconds a kept-alive connection may wait for its next request."""
    request_timeout: float = REQUEST_TIMEOUT
    """Seconds from a request's first byte to its last."""


class Refusal(Exception):
    """The door answers this itself, shaped for the path's API, and closes the connection."""

    def __init__(self, error: GatewayError, request_line: bytes) -> None:
        super().__init__(error.message)
        self.error = error
        target = request_line.split(b" ", 2)[1:2] or [b""]
        self.shape: Shape = shape_for(target[0].partition(b"?")[0].decode("latin-1"))
        self.head_only = request_line.startswith(b"HEAD ")


class ClientGone(Exception):
    """The client closed, or sent nothing before the idle timeout: close without an answer."""


@dataclass(frozen=True, slots=True)
class Head:
    """A request whose head is read and checked; its body is still on the socket."""

    request: GatewayRequest
    request_line: bytes
    length: int
    keep_alive: bool
    http10: bool
    expects_continue: bool
    parser: h11.Connection


class RequestReader:
    """The requests of one connection, one after another (pipelined bytes are kept)."""

    def __init__(
        self, sock: socket.socket, limits: Limits, waiting: Callable[[bool], bool]
    ) -> None:
        """`waiting(True)` is called before waiting for a request's first byte and returns
        False when the server is stopping (then no new request is read); `waiting(False)` once
        a byte arrived."""
        self._sock = sock
        self._limits = limits
        self._waiting = waiting
        self._buffer = bytearray()
        self._deadline = 0.0

    def head(self) -> Head:
        """The next request's head. Raises ClientGone or Refusal."""
        raw = self._read_head()
        return self._parse(raw)

    def body(self, head: Head) -> bytes:
        """Read the body `head` announced (the caller has checked its length)."""
        parser, parts = head.parser, []
        while True:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError:
                raise Refusal(InvalidRequestError(_MALFORMED), head.request_line) from None
            if event is h11.NEED_DATA:
                parser.receive_data(self._receive(head))
            elif isinstance(event, h11.Data):
                parts.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise Refusal(InvalidRequestError(_MALFORMED), head.request_line)
        self._buffer[:] = parser.trailing_data[0]  # the next pipelined request, if any
        return b"".join(parts)

    # -- the head ------------------------------------------------------------------------------

    def _read_head(self) -> bytes:
        buffer = self._buffer
        if not buffer:
            if not self._waiting(True):
                raise ClientGone
            try:
                data = self._recv(time.monotonic() + self._limits.idle_timeout)
            except TimeoutError:
                raise ClientGone from None
            finally:
                self._waiting(False)
            if not data:
                raise ClientGone
            buffer += data
        self._deadline = time.monotonic() + self._limits.request_timeout
        searched = 0
        while True:
            if buffer[:1] == b"\n" or buffer[:2] == b"\r\n":
                del buffer[: 1 if buffer[0] == 0x0A else 2]
                searched = 0
                continue
            end = _HEAD_END.search(buffer, max(0, searched - 2))
            if end is not None:
                raw = bytes(buffer[: end.end()])
                del buffer[: end.end()]
                return raw
            searched = len(buffer)
            self._check_partial_head(buffer)
            buffer += self._receive()

    def _check_partial_head(self, buffer: bytearray) -> None:
        limits = self._limits
        line_end = buffer.find(b"\n", 0, limits.request_line + 2)
        if line_end < 0 and len(buffer) > limits.request_line + 1:
            raise Refusal(
                UriTooLongError(f"The request line is longer than {limits.request_line} bytes."),
                bytes(buffer[: limits.request_line]),
            )
        if len(buffer) > limits.head:
            raise Refusal(
                HeadersTooLargeError(f"The request's headers exceed {limits.head} bytes."),
                bytes(buffer[: max(line_end, 0)]),
            )

    def _parse(self, raw: bytes) -> Head:
        lines = [line.removesuffix(b"\r") for line in raw.split(b"\n")[:-2]]
        request_line = lines[0]
        error = _size_error(self._limits, request_line, lines[1:]) or _field_error(lines[1:])
        if error is not None:
            raise Refusal(error, request_line)
        encoded = _encode_target(request_line)
        if encoded is not request_line:
            raw = encoded + b"\r\n" + raw[raw.index(b"\n") + 1 :]
        parser = h11.Connection(h11.SERVER, max_incomplete_event_size=self._limits.head)
        parser.receive_data(raw)
        if self._buffer:  # the body's first bytes, or pipelined requests (b"" would mean EOF)
            parser.receive_data(bytes(self._buffer))
            self._buffer.clear()
        try:
            event = parser.next_event()
        except h11.RemoteProtocolError:
            raise Refusal(InvalidRequestError(_MALFORMED), request_line) from None
        if not isinstance(event, h11.Request):
            raise Refusal(InvalidRequestError(_MALFORMED), request_line)
        if event.http_version not in (b"1.0", b"1.1"):
            raise Refusal(HttpVersionError("This server speaks HTTP/1.1."), request_line)
        headers = normalize_headers(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers
        )
        path, _, query = event.target.decode("latin-1").partition("?")
        http10 = event.http_version == b"1.0"
        connection = {token.strip() for token in headers.get("connection", "").lower().split(",")}
        return Head(
            request=GatewayRequest(
                method=event.method.decode("latin-1"),
                path=path,
                query=query,
                headers=headers,
                door="local",
            ),
            request_line=request_line,
            length=int(headers.get("content-length", "0")),
            keep_alive=not http10 and "close" not in connection,
            http10=http10,
            expects_continue=parser.they_are_waiting_for_100_continue,
            parser=parser,
        )

    # -- the socket ----------------------------------------------------------------------------

    def _receive(self, head: Head | None = None) -> bytes:
        """More of the current request, before its deadline (408 after it)."""
        try:
            data = self._recv(self._deadline)
        except TimeoutError:
            if head is not None:
                request_line = head.request_line
            else:
                request_line = bytes(self._buffer[: self._limits.request_line]).partition(b"\n")[0]
            raise Refusal(
                RequestTimeoutError(
                    f"The request did not arrive within {self._limits.request_timeout:g} seconds."
                ),
                request_line.removesuffix(b"\r"),
            ) from None
        if not data:
            raise ClientGone
        return data

    def _recv(self, deadline: float) -> bytes:
        """Bytes, or b"" when the client closed (or the connection broke)."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self._sock.settimeout(left)
        try:
            return self._sock.recv(_RECEIVE)
        except TimeoutError:
            raise
        except OSError:
            return b""


def _encode_target(request_line: bytes) -> bytes:
    """The request line with its target's non-visible bytes percent-encoded (the same object
    when there are none, which is every well-behaved client's case)."""
    parts = request_line.split(b" ")
    if len(parts) != 3 or not _NOT_VISIBLE_ASCII.search(parts[1]):
        return request_line
    target = _NOT_VISIBLE_ASCII.sub(lambda found: b"%%%02X" % found[0][0], parts[1])
    return b" ".join((parts[0], target, parts[2]))


def _size_error(limits: Limits, request_line: bytes, fields: list[bytes]) -> GatewayError | None:
    if len(request_line) > limits.request_line:
        return UriTooLongError(f"The request line is longer than {limits.request_line} bytes.")
    if sum(map(len, fields)) + len(request_line) > limits.head:
        return HeadersTooLargeError(f"The request's headers exceed {limits.head} bytes.")
    if len(fields) > limits.header_count:
        return HeadersTooLargeError(f"More than {limits.header_count} header lines.")
    if any(len(line) > limits.header_line for line in fields):
        return HeadersTooLargeError(f"A header line is longer than {limits.header_line} bytes.")
    return None


def _field_error(fields: list[bytes]) -> GatewayError | None:
    """Folding, forbidden value bytes, and body framing (the smuggling shapes)."""
    lengths = 0
    transfer_encoding = False
    for line in fields:
        if line[:1] in (b" ", b"\t"):
            return InvalidRequestError("Obsolete line folding is not accepted.")
        name, _, value = line.partition(b":")
        if _TOKEN.fullmatch(name) and _NOT_IN_A_VALUE.search(value):
            header = name.decode("ascii").lower()
            return InvalidRequestError(
                f"Header {header} holds a character HTTP does not allow.", param=header
            )
        lowered = name.lower()
        if lowered == b"content-length":
            lengths += 1
            if lengths > 1 or not _LENGTH.fullmatch(value):
                return InvalidRequestError("Send one Content-Length, a plain number of bytes.")
        transfer_encoding = transfer_encoding or lowered == b"transfer-encoding"
    if transfer_encoding and lengths:
        return InvalidRequestError("Content-Length and Transfer-Encoding cannot be sent together.")
    if transfer_encoding:
        return LengthRequiredError("Chunked request bodies are not accepted; send Content-Length.")
    return None
