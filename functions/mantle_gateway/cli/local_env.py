"""Local stand-ins started in-process: DynamoDB (moto's server mode) for `serve` and the tests.

moto is a development dependency; it is imported only here, only when asked for.
"""

from __future__ import annotations

import logging
from typing import Any


class EmbeddedDynamoDB:
    """A real HTTP DynamoDB endpoint on loopback, served by moto in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server: Any = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self.endpoint_url = ""

    def start(self) -> EmbeddedDynamoDB:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()
