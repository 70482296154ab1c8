"""Local stand-ins started in-process: DynamoDB (moto's server mode) for `serve` and the tests.

moto is a development dependency; it is imported only here, only when asked for.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class EmbeddedDynamoDB:
    """A real HTTP DynamoDB endpoint on loopback, served by moto in a background thread.

    moto's server threads are not safe with each other: a conditional write checks its condition
    and then writes without a lock, so two threads can both pass it (N racing gateways then
    admit more than the rate limit; DynamoDB makes each conditional write atomic), and
    TransactWriteItems deep-copies the tables for its rollback, which breaks when another thread
    changes them meanwhile. So every write runs alone; reads run concurrently with each other.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        _plain_number_arithmetic()
        self._address = (host, port)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.endpoint_url = ""

    def start(self) -> EmbeddedDynamoDB:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        lock = _SharedExclusiveLock()

        def serialized(environ: Any, start_response: Any) -> Any:
            target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
            with lock.shared() if target.endswith(_READS) else lock.exclusive():
                return list(app(environ, start_response))

        self._server = make_server(
            self._address[0],
            self._address[1],
            serialized,
            threaded=True,
            request_handler=MotoRequestHandler,
        )
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


def _plain_number_arithmetic() -> None:
    """Work around moto 5.2's number arithmetic: it prints sums with `str(Decimal)`, so a sum like
    0.1 + -0.1 is stored as "0E-1", which its next ADD cannot parse ("no '.' means int").
    Real DynamoDB normalizes numbers; here results are re-printed in plain notation."""
    from decimal import Decimal

    from moto.dynamodb.models.dynamo_type import DynamoType

    if getattr(DynamoType, "_mantle_plain_numbers", False):
        return
    add, sub = DynamoType.__add__, DynamoType.__sub__

    def plain(result: Any) -> Any:
        if result.is_number() and "E" in result.value.upper():
            result.value = format(Decimal(result.value), "f")
        return result

    DynamoType.__add__ = lambda self, other: plain(add(self, other))  # type: ignore[method-assign]
    DynamoType.__sub__ = lambda self, other: plain(sub(self, other))  # type: ignore[method-assign]
    DynamoType._mantle_plain_numbers = True  # type: ignore[attr-defined]
