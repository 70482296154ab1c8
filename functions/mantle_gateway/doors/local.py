"""The local door: a threaded HTTP/1.1 server running the same core as the Lambda doors.

It streams exactly as they do: each chunk the core yields is written as one HTTP chunk, in one
send, at once. A write that fails (client gone) closes the answer, which is how the core learns
of the disconnect and records usage for what was sent.
"""

from __future__ import annotations

import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from mantle_gateway.errors import RequestTooLargeError
from mantle_gateway.messages import GatewayRequest, GatewayResponse, normalize_headers
from mantle_gateway.observability import log_refusal


class Handles(Protocol):
    def handle(self, request: GatewayRequest) -> GatewayResponse: ...


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], gateway: Handles, max_body: int) -> None:
        super().__init__(address, _Handler)
        self.gateway = gateway
        self.max_body = max_body

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="local-door", daemon=True)
        thread.start()
        return thread


_DIGITS = re.compile(r"[0-9]{1,15}")
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120
    """Seconds a client may stay silent mid-request (or not read) before its thread is freed."""
    server: LocalServer
    wbufsize = 0
    """Unbuffered `wfile` (socketserver's default, relied on): each write is one `sendall`."""
    _headers_buffer: list[bytes]
    """`http.server`'s buffer of header lines (`send_header` appends; typeshed omits it)."""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def __getattr__(self, name: str) -> Any:
        """Any other method reaches the core too (405 or 404 there), not http.server's 501."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        path, _, query = self.path.partition("?")
        request = GatewayRequest(
            method=self.command,
            path=path,
            query=query,
            headers=normalize_headers(self.headers.items()),
            body=body,
            door="local",
        )
        response = self.server.gateway.handle(request)
        try:
            self._write(response)
        except _CLIENT_GONE:
            self.close_connection = True
        finally:
            response.close()

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self._refuse(411, b"chunked request bodies are not accepted; send Content-Length")
            return None
        raw_length = (self.headers.get("content-length") or "0").strip()
        length = int(raw_length) if _DIGITS.fullmatch(raw_length) else -1
        if length < 0:
            self._refuse(400, b"invalid Content-Length")
            return None
        if length > self.server.max_body:
            err = RequestTooLargeError(
                f"Request body is {length} bytes; this door accepts at most {self.server.max_body}."
            )
            log_refusal(err.status, err.code, door="local")
            self._send_plain(err.status, err.body())
            self.close_connection = True  # the unread body makes the connection unusable
            return None
        return self.rfile.read(length) if length else b""

    def _refuse(self, status: int, message: bytes) -> None:
        from mantle_gateway.errors import error_body

        log_refusal(status, None, door="local")
        self._send_plain(status, error_body(message.decode(), "invalid_request_error", None))
        self.close_connection = True

    def _send_plain(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.send_header("connection", "close")
        self._end_headers_with(body)

    def _end_headers_with(self, body: bytes) -> None:
        """End the headers and send `body` with them: one send, where `end_headers()` and then
        `wfile.write(body)` make two syscalls (and two segments on the wire)."""
        if self.request_version == "HTTP/0.9":
            self.wfile.write(body)  # a 0.9 answer has no headers; http.server buffers none
            return
        self._headers_buffer += (b"\r\n", body)
        self.flush_headers()

    def _write(self, response: GatewayResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if isinstance(response.body, bytes):
            self.send_header("content-length", str(len(response.body)))
            self._end_headers_with(b"" if self.command == "HEAD" else response.body)
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        write = self.wfile.write
        for chunk in response.body:
            if chunk:
                write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: object) -> None:
        """Access lines are left to the gateway's structured logs."""


def serve(gateway: Handles, host: str, port: int, max_body: int) -> LocalServer:
    return LocalServer((host, port), gateway, max_body)
