"""The local door: an HTTP/1.1 server running the same core as the Lambda doors.

Requests are read strictly (`http_request`: h11, caps, deadlines) and answered as the Lambda
doors stream (`http_answer`). One thread per connection, at most `max_connections` of them:
beyond that, new connections wait in the listen queue until one ends (idle connections end
after the idle timeout), so a crowd of idle clients cannot exhaust the process's threads.

Every refusal the door makes itself is shaped like the API of the path and closes the
connection. A request announcing a body over 64 KiB (or asking `Expect: 100-continue`) is
pre-checked from its head — route and key, `Gateway.precheck` — before the door reads the body,
so a client without a valid key cannot make it read megabytes. A write that fails (client
gone) closes the answer, which is how the core learns of the disconnect and records usage for
what was sent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from mantle_gateway.doors.http_answer import write_answer
from mantle_gateway.doors.http_request import (
    IDLE_TIMEOUT,
    REQUEST_TIMEOUT,
    ClientGone,
    Head,
    Limits,
    Refusal,
    RequestReader,
)
from mantle_gateway.errors import GatewayError, RequestTooLargeError
from mantle_gateway.messages import GatewayRequest, GatewayResponse
from mantle_gateway.observability import log_refusal, logger

DEFAULT_MAX_CONNECTIONS = 256
PRECHECK_ABOVE = 64 * 1024
"""Bodies larger than this are read only once the head passed `precheck`."""
WRITE_TIMEOUT = 60.0
"""Seconds a send may wait on a client that reads nothing before it counts as gone."""
LINGER_SECONDS = 2.0
"""After a refusal, how long unread bytes are read and dropped before closing (RFC 9112
§9.6), so the client reads the answer instead of a connection reset."""
CUT_GRACE_SECONDS = 5.0
"""At shutdown, how long connections cut after the drain time get to close their answers."""
_JSON = "application/json"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

Precheck = Callable[[GatewayRequest], GatewayError | None]


class Handles(Protocol):
    def handle(self, request: GatewayRequest) -> GatewayResponse: ...


class LocalServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        gateway: Handles,
        limits: Limits,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.gateway = gateway
        self.precheck: Precheck | None = getattr(gateway, "precheck", None)
        self.limits = limits
        self.stopping = False
        self._closing = False
        self._slots = threading.BoundedSemaphore(max_connections)
        self._connections: dict[_Connection, bool] = {}
        """Open connections → whether each is idle (waiting for its next request)."""
        self._changed = threading.Condition()
        super().__init__(address, _Connection)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="local-door", daemon=True)
        thread.start()
        return thread

    # -- accepting, within the connection cap ----------------------------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        """Start the connection's thread once a slot is free; until then the accept loop waits
        and new connections queue in the kernel's listen backlog."""
        while not self._slots.acquire(timeout=0.5):
            if self._closing:
                self.shutdown_request(request)
                return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def shutdown(self) -> None:
        """Stop accepting (connections already open are served on)."""
        self._closing = True
        super().shutdown()

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.exception("local_door_failed")

    # -- stopping gracefully ---------------------------------------------------------------------

    def drain(self, timeout: float) -> bool:
        """After `shutdown()`: close idle connections now, let busy ones finish their answer (then
        close) for up to `timeout` seconds, then cut the rest, whose answers then close as
        for a client gone. True when every answer finished in time."""
        with self._changed:
            self.stopping = True
            for connection, idle in self._connections.items():
                if idle:
                    connection.interrupt()
            finished = self._changed.wait_for(lambda: not self._connections, timeout)
            if not finished:
                for connection in self._connections:
                    connection.cut()
                self._changed.wait_for(lambda: not self._connections, CUT_GRACE_SECONDS)
        return finished

    def opened(self, connection: _Connection) -> None:
        with self._changed:
            self._connections[connection] = False

    def closed(self, connection: _Connection) -> None:
        with self._changed:
            self._connections.pop(connection, None)
            self._changed.notify_all()

    def waiting(self, connection: _Connection, idle: bool) -> bool:
        """Mark a connection idle (or not); False when the server is stopping: read no more."""
        with self._changed:
            if idle and self.stopping:
                return False
            self._connections[connection] = idle
            return True


class _Connection(socketserver.StreamRequestHandler):
    """One client connection: its requests one after another, each answered before the next."""

    server: LocalServer
    rbufsize = 0
    wbufsize = 0
    """`wfile` unbuffered (socketserver's `_SocketWriter`): each write is one `sendall`."""
    disable_nagle_algorithm = True
    """TCP_NODELAY: a streamed chunk leaves at once, not after the previous one's ACK."""

    def handle(self) -> None:
        server = self.server
        server.opened(self)
        reader = RequestReader(
            self.connection, server.limits, lambda idle: server.waiting(self, idle)
        )
        try:
            while self._exchange(reader):
                pass
        finally:
            server.closed(self)

    def interrupt(self) -> None:
        """End the wait for a next request (the reader sees the connection's end)."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RD)

    def cut(self) -> None:
        """End the connection both ways: pending reads and writes fail at once."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _exchange(self, reader: RequestReader) -> bool:
        """One request and its answer; False when the connection must close."""
        try:
            head = reader.head()
            self._admit(head)
            if head.expects_continue:
                self._write(_CONTINUE)
            body = reader.body(head)
        except Refusal as refusal:
            self._refuse(refusal)
            return False
        except (ClientGone, OSError):
            return False
        response = self.server.gateway.handle(dataclasses.replace(head.request, body=body))
        keep_alive = head.keep_alive and not self.server.stopping
        try:
            self.connection.settimeout(WRITE_TIMEOUT)
            write_answer(
                self.wfile,
                response,
                head_only=head.request.method == "HEAD",
                http10=head.http10,
                close=not keep_alive,
            )
        except OSError:
            keep_alive = False  # the client is gone; closing the answer tells the core
        finally:
            response.close()
        return keep_alive

    def _admit(self, head: Head) -> None:
        """Refuse from the head alone what must not have its body read: too large, or (for a
        large body, or a client waiting for `100 Continue`) an unknown route or a bad key."""
        max_body = self.server.limits.max_body
        if head.length > max_body:
            raise Refusal(
                RequestTooLargeError(
                    f"Request body is {head.length} bytes; this door accepts at most {max_body}."
                ),
                head.request_line,
            )
        precheck = self.server.precheck
        if precheck is not None and (head.length > PRECHECK_ABOVE or head.expects_continue):
            error = precheck(head.request)
            if error is not None:
                raise Refusal(error, head.request_line)

    def _refuse(self, refusal: Refusal) -> None:
        error = refusal.error
        log_refusal(error.status, error.code, door="local")
        answer = GatewayResponse(
            error.status,
            [("content-type", _JSON), *error.answer_headers(refusal.shape)],
            error.body(refusal.shape),
        )
        try:
            self.connection.settimeout(WRITE_TIMEOUT)
            write_answer(self.wfile, answer, head_only=refusal.head_only, http10=False, close=True)
            self._linger()
        except OSError:
            pass

    def _write(self, data: bytes) -> None:
        self.connection.settimeout(WRITE_TIMEOUT)
        self.wfile.write(data)

    def _linger(self) -> None:
        """Half-close, then read and drop what the client still sends, for a moment: closing
        with unread bytes would reset the connection, and the client could lose the answer."""
        sock = self.connection
        sock.shutdown(socket.SHUT_WR)
        scratch = bytearray(65536)
        end = time.monotonic() + LINGER_SECONDS
        while (left := end - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv_into(scratch):
                return


def serve(
    gateway: Handles,
    host: str,
    port: int,
    max_body: int,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    idle_timeout: float = IDLE_TIMEOUT,
    request_timeout: float = REQUEST_TIMEOUT,
) -> LocalServer:
    limits = Limits(max_body, idle_timeout=idle_timeout, request_timeout=request_timeout)
    return LocalServer((host, port), gateway, limits, max_connections)
