"""Local stand-ins started in-process: DynamoDB (moto's server mode) for `serve` and the tests.

moto is a development dependency; it is imported only here, only when asked for.
"""

from __future__ import annotations

import logging
import threading
from typing import Any


class EmbeddedDynamoDB:
    """A real HTTP DynamoDB endpoint on loopback, served by moto in a background thread.

    moto's backends are not thread-safe (concurrent TransactWriteItems corrupt its rollback
    copies), so calls are served one at a time behind a lock, as DynamoDB itself serializes
    writes to one item. Connections stay keep-alive and concurrent clients simply queue.
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
        lock = threading.Lock()

        def serialized(environ: Any, start_response: Any) -> Any:
            with lock:
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
