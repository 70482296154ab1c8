"""Local stand-ins started in-process: DynamoDB (moto's server mode) for `serve` and the tests.

moto is a development dependency; it is imported only here, only when asked for.
"""

from __future__ import annotations

import io
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mantle_gateway.cli import moto_fixes
from mantle_gateway.messages import normalize_headers


class EmbeddedDynamoDB:
    """A real HTTP DynamoDB endpoint on loopback, served by moto in a background thread.

    moto's server threads are not safe with each other: a conditional write checks its condition
    and then writes without a lock, so two threads can both pass it (N racing gateways then
    admit more than the rate limit; DynamoDB makes each conditional write atomic), and
    TransactWriteItems saves what it may change for its rollback, which breaks when another
    thread changes it meanwhile. So every write runs alone; reads run concurrently with each
    other. The moto defects it works around are in `moto_fixes`.

    moto keeps its tables in module globals: two instances in one process share them, so
    `snapshot`/`restore` (the `--data-dir` of `serve`) see every table of the process.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        moto_fixes.apply()
        self._address = (host, port)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._lock = _SharedExclusiveLock()
        self._writes = 0
        self.endpoint_url = ""

    @property
    def writes(self) -> int:
        """Calls served that may have changed something (anything but a read), so far."""
        return self._writes

    def snapshot(self) -> dict[str, Any]:
        """Every table and item as plain JSON (`local_snapshot`), taken between two writes."""
        from mantle_gateway.cli import local_snapshot

        with self._lock.exclusive():
            return local_snapshot.export_tables()

    def restore(self, snapshot: Any) -> int:
        """Put a `snapshot` back (its tables created where missing); the number of items.
        Raises `local_snapshot.SnapshotError` for anything else."""
        from mantle_gateway.cli import local_snapshot

        with self._lock.exclusive():
            return local_snapshot.import_tables(snapshot)

    def start(self) -> EmbeddedDynamoDB:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        dispatcher = DomainDispatcherApplication(create_backend_app)
        lock = self._lock
        dynamodb_app: Any = None

        def app_for(environ: Any, target: str) -> Any:
            """DynamoDB's handler for DynamoDB calls, its app found once: moto's dispatcher
            looks for the service again on every call (listing moto's package folders, ~1 ms
            each). Other calls (moto-api's reset, other services the tests use) go to it."""
            nonlocal dynamodb_app
            if not target.startswith(_DYNAMODB_TARGET):
                return dispatcher
            if dynamodb_app is None:
                dynamodb_app = _WithoutFlask(dispatcher.get_application(environ))
            return dynamodb_app

        def serialized(environ: Any, start_response: Any) -> Any:
            target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
            app = app_for(environ, target)
            if target.endswith(_READS):
                with lock.shared():
                    return list(app(environ, start_response))
            with lock.exclusive():
                self._writes += 1
                return list(app(environ, start_response))

        self._server = _KeepAliveWSGIServer(self._address, serialized)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="embedded-dynamodb", daemon=True
        )
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _WithoutFlask:
    """moto's DynamoDB handler called as its Flask app would call it, without Flask around it:
    the request context, URL routing, CORS and response finalizing were a tenth of moto's CPU
    per call, for one route (`POST /`, `DynamoHandler.dispatch`). Kept from the app: its request
    class (moto's), the handler's (status, headers, body) as the answer. Not kept: moto's request
    recorder (a moto-api feature, off unless asked for). A failure inside moto is answered as
    DynamoDB answers its own failures, a 500 `InternalServerError` in JSON, where Flask's
    answer was an HTML page."""

    def __init__(self, app: Any) -> None:
        from moto.dynamodb.responses import DynamoHandler
        from werkzeug.wrappers import Response

        self._request_class = app.request_class
        self._handler = DynamoHandler.dispatch
        self._response_class = Response

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = self._request_class(environ)
        try:
            status, headers, body = self._handler(request, request.raw_url, dict(request.headers))
        except Exception as exc:  # moto's own failure, not the caller's
            status, headers = 500, {"Content-Type": "application/x-amz-json-1.0"}
            body = json.dumps(
                {
                    "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                    "message": f"moto failed: {type(exc).__name__}",
                }
            )
        answer = self._response_class(response=body, status=status, headers=headers)
        return answer(environ, start_response)


class _KeepAliveWSGIServer(ThreadingHTTPServer):
    """moto's WSGI app over HTTP/1.1 keep-alive, as DynamoDB serves its clients.

    werkzeug's development server closes every connection, so each call opened a new TCP
    connection and a new server thread: CPU on both sides that a real endpoint does not cost.
    DynamoDB's protocol is small (a POST with a length-delimited JSON body, a JSON answer), so
    this front speaks only that much HTTP."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: Any) -> None:
        super().__init__(address, _WSGIHandler)
        self.app = app


class _WSGIHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _KeepAliveWSGIServer
    raw_requestline: bytes
    """Set by http.server's `handle_one_request` before it calls `parse_request`."""

    def parse_request(self) -> bool:
        """The request line and header fields, read plainly. http.server hands the fields to
        the e-mail parser (~0.3 ms a call, a tenth of what moto then spends on it); DynamoDB's
        clients send HTTP/1.x with a few plain fields, one per line."""
        self.command = None  # type: ignore[assignment]  # http.server's own "not known yet"
        self.close_connection = True
        self.request_version = "HTTP/1.1"  # what a refusal's status line is written in
        self.requestline = self.raw_requestline.decode("latin-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(HTTPStatus.BAD_REQUEST, "Bad request line")
            return False
        self.command, self.path, self.request_version = words
        pairs = []
        for _ in range(_MAX_FIELDS):
            line = self.rfile.readline(_MAX_LINE + 1)
            if line in (b"\r\n", b"\n", b""):
                break
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon or len(line) > _MAX_LINE:
                self.send_error(HTTPStatus.BAD_REQUEST, "Bad header line")
                return False
            pairs.append((name.strip(), value.strip()))
        else:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many header lines")
            return False
        fields = normalize_headers(pairs)
        if not fields.get("content-length", "0").isdigit():  # repeated, or not a number
            self.send_error(HTTPStatus.BAD_REQUEST, "Bad Content-Length")
            return False
        self.headers = fields  # type: ignore[assignment]  # read only as .get() and .items()
        connection = fields.get("connection", "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive"
        )
        return True

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("content-type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():  # repeats already joined
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        answer: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], _exc: Any = None) -> Any:
            answer[:] = [status, headers]
            return lambda _data: None  # the legacy write() callable; moto returns its body

        data = b"".join(self.server.app(environ, start_response))
        status, headers = answer
        code, _, reason = status.partition(" ")
        self.send_response_only(int(code), reason)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_DELETE = do_HEAD = do_POST

    def log_message(self, format: str, *args: object) -> None:
        """Quiet, as werkzeug's request log was (set to errors only)."""


_MAX_FIELDS = 100
_MAX_LINE = 65536


_HOP_BY_HOP = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive"})


_DYNAMODB_TARGET = "DynamoDB_20120810."
_READS = (
    ".GetItem",
    ".BatchGetItem",
    ".TransactGetItems",
    ".Query",
    ".Scan",
    ".DescribeTable",
    ".DescribeTimeToLive",
    ".ListTables",
)
"""Calls that only read: these may run side by side; anything else runs alone."""


class _SharedExclusiveLock:
    """Many shared holders at once, or one exclusive holder (writer-preferring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive or self._waiting:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._exclusive or self._shared:
                self._cond.wait()
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()
