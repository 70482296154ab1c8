"""Local door: what reaches the socket, send by send, for whole and streamed answers."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from mantle_gateway.doors.local import LocalServer, serve
from mantle_gateway.messages import GatewayRequest, GatewayResponse

BODY = b'{"ok":true}'


class Core:
    def __init__(self, body: bytes | Iterator[bytes]) -> None:
        self.body = body

    def handle(self, request: GatewayRequest) -> GatewayResponse:
        return GatewayResponse(200, [("content-type", "application/json")], self.body)


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write the door makes to a client socket (each is one `sendall`)."""
    seen: list[bytes] = []
    write = socketserver._SocketWriter.write  # type: ignore[attr-defined]

    def recording(self: object, data: bytes) -> int:
        seen.append(bytes(data))
        return int(write(self, data))

    monkeypatch.setattr(socketserver._SocketWriter, "write", recording)  # type: ignore[attr-defined]
    return seen


def door(core: Core) -> LocalServer:
    server = serve(core, "127.0.0.1", 0, 1024)
    server.start_background()
    return server


def stop(server: LocalServer) -> None:
    server.shutdown()
    server.server_close()


def ask(server: LocalServer, method: str = "GET") -> socket.socket:
    host, port = server.server_address[:2]
    client = socket.create_connection((str(host), port), timeout=5)
    client.sendall(f"{method} /x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
    return client


def read_all(client: socket.socket) -> bytes:
    with client:
        return b"".join(iter(lambda: client.recv(65536), b""))


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_whole_answer_leaves_in_one_send(sends: list[bytes], method: str) -> None:
    server = door(Core(BODY))
    try:
        answer = read_all(ask(server, method))
    finally:
        stop(server)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"\r\ncontent-length: 11" in head
    assert body == (b"" if method == "HEAD" else BODY)
    assert sends == [answer]


def test_each_streamed_chunk_leaves_in_its_own_send_as_soon_as_it_is_yielded(
    sends: list[bytes],
) -> None:
    release = threading.Event()

    def body() -> Iterator[bytes]:
        yield b"data: 1\n\n"
        release.wait(5)
        yield b"data: 2\n\ndata: 3\n\n"

    server = door(Core(body()))
    try:
        client = ask(server)
        first = b""
        while not first.endswith(b"data: 1\n\n\r\n"):
            first += client.recv(65536)  # the core's body is still waiting
        release.set()
        rest = read_all(client)
    finally:
        release.set()
        stop(server)
    assert b"\r\ntransfer-encoding: chunked\r\n" in sends[0]
    assert sends[1:] == [b"9\r\ndata: 1\n\n\r\n", b"12\r\ndata: 2\n\ndata: 3\n\n\r\n", b"0\r\n\r\n"]
    assert first + rest == b"".join(sends)
