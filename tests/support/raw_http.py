"""A raw HTTP/1.1 client for door tests: sends exactly the bytes it is given, reads answers one
at a time off a kept-alive socket (by Content-Length, chunks, or the connection's end)."""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass
from typing import Any

TIMEOUT = 10.0
"""Seconds a test waits for an answer before it counts as a hang."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    """Lower-cased names; repeats joined with ", "."""
    body: bytes
    head: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    def __init__(self, address: tuple[Any, ...], timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection((str(address[0]), int(address[1])), timeout=timeout)
        self._buffer = b""

    @classmethod
    def replay(cls, received: bytes) -> Client:
        """Read answers out of bytes already received (no socket)."""
        client = cls.__new__(cls)
        client.sock = None  # type: ignore[assignment]
        client._buffer = received
        return client

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        """Send; a door that answered and closed first may reset the rest, which is fine."""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.sendall(data)

    def answer(self, *, head_only: bool = False) -> Answer:
        """The next answer (1xx interim answers included, as they come)."""
        head = self._until(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, status, *_ = status_line.split(" ", 2)
        assert version == "HTTP/1.1", status_line
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        code = int(status)
        if head_only or code < 200 or code in (204, 304):
            body = b""
        elif "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        elif "chunked" in headers.get("transfer-encoding", ""):
            body = self._chunks()
        else:
            body = self.rest()
        return Answer(code, headers, body, head)

    def rest(self) -> bytes:
        """Everything until the door closes the connection."""
        data, self._buffer = self._buffer, b""
        while piece := self._recv():
            data += piece
        return data

    def closed(self) -> bool:
        """True when the door has closed the connection (nothing more to read)."""
        return self.rest() == b""

    def _chunks(self) -> bytes:
        out = b""
        while True:
            size = int(self._until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                self._until(b"\r\n")
                return out
            out += self._exactly(size)
            assert self._exactly(2) == b"\r\n"

    def _until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            piece = self._recv()
            assert piece, f"the connection ended before {marker!r}: {self._buffer[:200]!r}"
            self._buffer += piece
        found, _, self._buffer = self._buffer.partition(marker)
        return found

    def _exactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            piece = self._recv()
            assert piece, "the connection ended inside a body"
            self._buffer += piece
        found, self._buffer = self._buffer[:count], self._buffer[count:]
        return found

    def _recv(self) -> bytes:
        if self.sock is None:
            return b""
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            return b""
        except TimeoutError:
            raise AssertionError("no answer in time (a hang)") from None


def request(
    method: str,
    target: str,
    *,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    length: bool = True,
    version: str = "HTTP/1.1",
) -> bytes:
    """One request, byte for byte; `Host` and `Content-Length` added unless given."""
    lines = [f"{method} {target} {version}"]
    given = headers or []
    if not any(name.lower() == "host" for name, _ in given) and version == "HTTP/1.1":
        lines.append("Host: 127.0.0.1")
    lines += [f"{name}: {value}" for name, value in given]
    if length and (body or method in ("POST", "PUT")):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
