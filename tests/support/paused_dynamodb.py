"""DynamoDB behind a proxy that holds every usage write (TransactWriteItems) until released.

A gateway process pointed at it answers its clients while its usage writes wait, which is how a
test shows, by the order of events, that the answers did not wait for those writes, and what a
shutdown does with writes that have not landed.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

HELD_TARGET = "DynamoDB_20120810.TransactWriteItems"


class PausedDynamoDB:
    def __init__(self, dynamodb_url: str) -> None:
        target = urlsplit(dynamodb_url)
        self._target = (str(target.hostname), int(target.port or 80))
        self._changed = threading.Condition()
        self.held = 0
        """Usage writes waiting here so far."""
        self._released = False
        self._dropped = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> PausedDynamoDB:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.drop()
        self._server.shutdown()
        self._server.server_close()

    def release(self) -> None:
        """Let every held write (and every later one) through."""
        with self._changed:
            self._released = True
            self._changed.notify_all()

    def drop(self) -> None:
        """Answer every held write with a connection reset: it never reaches DynamoDB."""
        with self._changed:
            self._dropped = True
            self._changed.notify_all()

    def wait_held(self, count: int, timeout: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.held >= count, timeout)

    def _hold(self) -> bool:
        """Wait until released (True: forward) or dropped (False)."""
        with self._changed:
            self.held += 1
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._released or self._dropped)
            return not self._dropped

    def _forward(self, path: str, headers: dict[str, str], body: bytes) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection(*self._target, timeout=30)
        connection.request("POST", path, body, headers)
        return connection.getresponse()


def _handler(proxy: PausedDynamoDB) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.headers.get("x-amz-target") == HELD_TARGET and not proxy._hold():
                self.close_connection = True
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            answer = proxy._forward(self.path, headers, body)
            content = answer.read()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("connection", "content-length", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
