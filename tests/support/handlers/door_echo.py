"""The real Lambda entry (`mantle_gateway.doors.lambda_entry`) over a fake core that streams
back what reached it: the whole door path through the real runtime, no AWS, no wiring."""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

from mantle_gateway.doors import lambda_entry
from mantle_gateway.messages import GatewayRequest, GatewayResponse


class EchoGateway:
    def __init__(self, close_log: str | None) -> None:
        self._close_log = close_log

    def _closed(self) -> None:
        if self._close_log:
            with Path(self._close_log).open("a") as file:
                file.write("on_close\n")

    def handle(self, request: GatewayRequest) -> GatewayResponse:
        seen = {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "door": request.door,
            "deadline": request.deadline,
            "request_id": request.request_id,
            "cookie": request.headers.get("cookie"),
            "body": request.body.decode(),
        }

        def events() -> Generator[bytes, None, None]:
            yield f"data: {json.dumps(seen)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return GatewayResponse(
            200,
            [("content-type", "text/event-stream"), ("set-cookie", "s=1; Secure")],
            events(),
            on_close=self._closed,
        )


def handler(event: dict[str, Any], context: Any) -> dict[str, object]:
    gateway = EchoGateway(event.get("headers", {}).get("x-close-log"))
    return lambda_entry.handle_event(event, context, gateway)
