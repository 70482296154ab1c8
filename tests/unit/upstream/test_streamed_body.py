"""Reading a streamed upstream body over a real HTTP/1.1 connection: what has arrived leaves in
one piece at once, the connection goes back to the pool, and breaks become `StreamBroken`."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from mantle_gateway.upstream.client import StreamBroken, UpstreamClient

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
END = b"0\r\n\r\n"

Answer = Callable[[socket.socket], None]


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


@dataclass
class Upstream:
    port: int
    connections: list[int] = field(default_factory=list)
    """Requests served, one entry per connection accepted."""

    def client(self, read_timeout: float = 5) -> UpstreamClient:
        url = f"http://127.0.0.1:{self.port}"
        return UpstreamClient(url, connect_timeout=1, read_timeout=read_timeout)

    def stream(self, client: UpstreamClient) -> Iterator[bytes]:
        url = f"http://127.0.0.1:{self.port}/stream"
        return client.chunks(client.open("GET", url, {}, b"", None))


@contextmanager
def upstream(*answers: Answer) -> Iterator[Upstream]:
    """A loopback server answering its requests in turn with `answers`, each writing raw bytes."""
    listener = socket.create_server(("127.0.0.1", 0))
    server = Upstream(listener.getsockname()[1])
    connections = server.connections
    pending = list(answers)

    def serve() -> None:
        while pending:
            conn, _ = listener.accept()
            connections.append(0)
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                reader = conn.makefile("rb")
                while pending and reader.readline():
                    while reader.readline() not in (b"\r\n", b""):
                        pass  # the request's headers; the tests send no body
                    connections[-1] += 1
                    pending.pop(0)(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        listener.close()
        thread.join(5)


def test_chunks_already_received_leave_together_and_nothing_waits_for_more() -> None:
    release = threading.Event()

    def answer(conn: socket.socket) -> None:
        conn.sendall(HEAD)
        conn.sendall(chunk(b"data: 1\n\n") + chunk(b"data: 2\n\n") + chunk(b"data: 3"))
        release.wait(5)
        conn.sendall(chunk(b"\n\n") + END)

    with upstream(answer) as server:
        pieces = server.stream(server.client())
        try:
            assert next(pieces) == b"data: 1\n\ndata: 2\n\ndata: 3"  # the upstream still waits
        finally:
            release.set()
        assert list(pieces) == [b"\n\n"]


def test_the_connection_goes_back_to_the_pool_after_a_whole_body() -> None:
    def answer(conn: socket.socket) -> None:
        conn.sendall(HEAD + chunk(b"data: 1\n\n") + END)

    with upstream(answer, answer) as server:
        client = server.client()
        for _ in range(2):
            assert b"".join(server.stream(client)) == b"data: 1\n\n"
        assert server.connections == [2]


def test_a_connection_dropped_mid_body_is_a_broken_stream() -> None:
    def answer(conn: socket.socket) -> None:
        conn.sendall(HEAD + chunk(b"data: 1\n\n"))
        conn.shutdown(socket.SHUT_RDWR)

    with upstream(answer) as server:
        pieces = server.stream(server.client())
        assert next(pieces) == b"data: 1\n\n"
        with pytest.raises(StreamBroken) as broken:
            next(pieces)
        assert broken.value.reason == "upstream_dropped"


def test_a_malformed_chunk_is_a_broken_stream() -> None:
    def answer(conn: socket.socket) -> None:
        conn.sendall(HEAD + b"zz\r\ndata: 1\n\n\r\n" + END)

    with upstream(answer) as server, pytest.raises(StreamBroken) as broken:
        list(server.stream(server.client()))
    assert broken.value.reason == "upstream_dropped"


def test_an_upstream_silent_past_the_read_timeout_is_a_broken_stream() -> None:
    release = threading.Event()

    def answer(conn: socket.socket) -> None:
        conn.sendall(HEAD + chunk(b"data: 1\n\n"))
        release.wait(5)

    with upstream(answer) as server:
        pieces = server.stream(server.client(read_timeout=0.2))
        assert next(pieces) == b"data: 1\n\n"
        with pytest.raises(StreamBroken) as broken:
            next(pieces)
        release.set()
        assert broken.value.reason == "upstream_idle_timeout"


def test_other_transports_are_read_through_httpx() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([b"data: 1\n\n", b"data: 2\n\n"]))

    client = UpstreamClient(
        "https://mantle.example",
        connect_timeout=1,
        read_timeout=1,
        transport=httpx.MockTransport(answer),
    )
    response = client.open("POST", "https://mantle.example/v1/chat", {}, b"{}", None)
    assert list(client.chunks(response)) == [b"data: 1\n\n", b"data: 2\n\n"]
