"""Lambda handler: picks the door from the event's shape, hands the request to the core.

`_HANDLER=mantle_gateway.doors.lambda_entry.handler`. The streaming runtime in
`layers/streaming_runtime` imports this module once per process and calls `handler` per event.
`handler` returns the runtime's HTTP answer (its `contract` module): the door's prelude keys
(`statusCode`, `headers`, and `cookies` or `multiValueHeaders`) plus a `body` the runtime pulls
piece by piece and then closes exactly once. That `close()` is `GatewayResponse.close()`, which
the core needs after every answer, streamed or not, to learn of an early stop and to record usage;
the runtime calls it after Lambda has the last byte, so the client never waits on the ledger.

Thin on purpose: which door, the deadline from the remaining time, and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from mantle_gateway.doors import function_url, rest_api
from mantle_gateway.errors import GatewayError, Shape, shape_for
from mantle_gateway.messages import GatewayRequest, GatewayResponse
from mantle_gateway.observability import log_refusal, logger


class Gateway(Protocol):
    def handle(self, request: GatewayRequest) -> GatewayResponse: ...


class LambdaContext(Protocol):
    """The two context members a door needs (the runtime's context has them all)."""

    @property
    def aws_request_id(self) -> str: ...

    def get_remaining_time_in_millis(self) -> int: ...


class Door(Protocol):
    """What each door module provides (`function_url`, `rest_api`)."""

    DOOR: str

    def matches(self, event: Mapping[str, Any]) -> bool: ...

    def api_path(self, event: Mapping[str, Any]) -> str: ...

    def to_request(
        self, event: Mapping[str, Any], *, request_id: str, deadline: float | None
    ) -> GatewayRequest: ...

    def to_prelude(self, response: GatewayResponse) -> dict[str, object]: ...


DOORS: tuple[Door, ...] = (function_url, rest_api)


class UnknownEventError(ValueError):
    """Neither a Function URL nor a REST API event: a direct Invoke, or a wrong trigger."""


class ResponseBody:
    """A `GatewayResponse` body as the runtime reads it: bytes are one piece, a stream its
    chunks; `close()` closes the response (once; later calls do nothing)."""

    def __init__(self, response: GatewayResponse) -> None:
        self._response = response
        body = response.body
        self._pieces: Iterator[bytes] = iter((body,)) if isinstance(body, bytes) else body

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._pieces)

    def close(self) -> None:
        self._response.close()


@logger.inject_lambda_context  # every log line of the invocation carries Lambda's request id
def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, object]:
    from mantle_gateway import wiring  # first use builds the process's pools and caches

    return handle_event(event, context, wiring.gateway())


def handle_event(
    event: Mapping[str, Any],
    context: LambdaContext,
    gateway: Gateway,
    *,
    clock: Callable[[], float] = time.time,
) -> dict[str, object]:
    """The seam tests use: any object with `handle`, any clock."""
    door = door_for(event)
    deadline = clock() + context.get_remaining_time_in_millis() / 1000
    try:
        request = door.to_request(event, request_id=context.aws_request_id, deadline=deadline)
    except GatewayError as error:
        # A door's own bound (REST's 6 MB) answers before the core, in the shape the core would
        # use for that path (Anthropic's under /anthropic/, else OpenAI's).
        log_refusal(error.status, error.code, request_id=context.aws_request_id)
        response = refusal(error, shape_for(door.api_path(event)))
    else:
        response = gateway.handle(request)
    return {**door.to_prelude(response), "body": ResponseBody(response)}


def door_for(event: Mapping[str, Any]) -> Door:
    for door in DOORS:
        if door.matches(event):
            return door
    raise UnknownEventError(
        "event is neither a Function URL (payload 2.0) nor a REST API proxy event"
    )


def refusal(error: GatewayError, shape: Shape = "openai") -> GatewayResponse:
    headers = [("content-type", "application/json"), *error.answer_headers(shape)]
    return GatewayResponse(status=error.status, headers=headers, body=error.body(shape))
