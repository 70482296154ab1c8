"""An HTTP transport between the stores and DynamoDB, for tests: it sees each call the stores
make as (operation, params) and can count it, refuse it, fail it, hold it, or lose its answer —
at the wire, where real faults happen.

`Dynamo(..., transport=tap)` routes the stores' calls through it (`store.wire`); reads and
writes made directly on `dynamo.client` (botocore, the tests' own checks) do not pass here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from mantle_gateway.store.dynamo import Dynamo
from mantle_gateway.store.wire import pooled_transport

Before = Callable[[dict[str, Any], httpx.Request], "httpx.Response | None"]
"""Sees a call before it goes out; may answer it itself (it then never reaches DynamoDB) or
raise (an httpx error is a transport failure, anything else an unexpected one)."""
After = Callable[[dict[str, Any], httpx.Response], None]
"""Sees DynamoDB's answer (read); may raise, e.g. httpx.ReadTimeout for an answer lost."""


class DynamoTap(httpx.BaseTransport):
    def __init__(self) -> None:
        self._inner = pooled_transport()
        self._before: list[tuple[str, Before]] = []
        self._after: list[tuple[str, After]] = []
        self.sent: list[str] = []
        """Every operation that reached this transport, in order (retries included)."""

    def before(self, operation: str, hook: Before) -> None:
        """`operation` as DynamoDB names it ("UpdateItem"), or "*"."""
        self._before.append((operation, hook))

    def after(self, operation: str, hook: After) -> None:
        self._after.append((operation, hook))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        operation = request.headers["x-amz-target"].rpartition(".")[2]
        params = json.loads(request.read())
        self.sent.append(operation)
        for name, hook in self._before:
            if name in (operation, "*"):
                answer = hook(params, request)
                if answer is not None:
                    return answer
        response = self._inner.handle_request(request)
        response.read()
        for name, after in self._after:
            if name in (operation, "*"):
                after(params, response)
        return response

    def close(self) -> None:
        self._inner.close()


def tapped(settings: Any) -> tuple[Dynamo, DynamoTap]:
    """A Dynamo for `settings`' DynamoDB whose stores' calls pass through a new tap."""
    tap = DynamoTap()
    dynamo = Dynamo(
        region=settings.region, endpoint_url=settings.dynamodb_endpoint_url, transport=tap
    )
    return dynamo, tap


def refusal(code: str, status: int = 400, **fields: Any) -> httpx.Response:
    """DynamoDB's error answer: `__type` naming the error, its message, any other fields."""
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected", **fields}
    return httpx.Response(status, headers={"content-type": "application/x-amz-json-1.0"}, json=body)


def refusing(code: str = "AccessDeniedException") -> Before:
    """A hook answering every call it sees as DynamoDB refuses one (by default: the role may
    not make it; not an error the client retries)."""

    def refuse(params: dict[str, Any], request: httpx.Request) -> httpx.Response:
        return refusal(code)

    return refuse
