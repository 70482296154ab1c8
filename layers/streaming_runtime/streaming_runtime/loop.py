"""One invocation at a time: next event, context, handler, then the answer or the error.

The processing steps of a custom runtime, in the documented order
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html#runtimes-custom-build):
get an event, propagate the trace header, build the context, call the handler, post the response
or the error. Where a failure is reported depends on whether a byte was already sent:

    handler raised, result breaks the contract, body failed before its first piece  -> /error
    body failed after the first byte was streamed          -> zero chunk + the two error trailers
    Runtime API connection lost mid-stream                 -> logged, next event

In every case the body's `close()` runs last, once: after Lambda has the answer or the error.

Python is single-threaded here by design: one invocation per process, as Lambda (default)
functions are invoked. Lambda Managed Instances' concurrent `/next` calls are not supported.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Callable, MutableMapping

from streaming_runtime import contract, failures
from streaming_runtime.context import Invocation, LambdaContext
from streaming_runtime.failures import ErrorReport
from streaming_runtime.runtime_api import ResponseStream, RuntimeApi

Handler = Callable[[object, LambdaContext], object]


class ResponseMode(enum.Enum):
    STREAMING = "streaming"
    BUFFERED = "buffered"


def serve(api: RuntimeApi, handler: Handler, mode: ResponseMode) -> None:
    """Forever: Lambda freezes the process between events and ends it with SIGKILL."""
    while True:
        handle(api, handler, mode, api.next_invocation())


def handle(
    api: RuntimeApi,
    handler: Handler,
    mode: ResponseMode,
    invocation: Invocation,
    env: MutableMapping[str, str] = os.environ,
) -> None:
    _propagate_trace(invocation.trace_id, env)
    context = LambdaContext.build(invocation, env)
    request_id = invocation.request_id
    try:
        event = json.loads(invocation.event) if invocation.event else {}
        outcome = contract.interpret(handler(event, context))
    except Exception as error:
        _post_error(api, request_id, error)
        return
    if isinstance(outcome, bytes):
        _check(api.post_response(request_id, outcome, "application/json"), request_id)
    elif mode is ResponseMode.BUFFERED:
        _send_buffered(api, request_id, outcome)
    else:
        _send_streamed(api, request_id, outcome)


def _propagate_trace(trace_id: str | None, env: MutableMapping[str, str]) -> None:
    """The X-Ray SDK and Powertools read `_X_AMZN_TRACE_ID`; never leak the previous event's."""
    if trace_id:
        env["_X_AMZN_TRACE_ID"] = trace_id
    else:
        env.pop("_X_AMZN_TRACE_ID", None)


def _send_buffered(api: RuntimeApi, request_id: str, answer: contract.HttpAnswer) -> None:
    """The function was configured for buffered invocations: one proxy JSON document."""
    try:
        document = answer.buffered_document()
    except Exception as error:
        _post_error(api, request_id, error)
        answer.body.close()
        return
    try:
        _check(api.post_response(request_id, document, "application/json"), request_id)
    finally:
        answer.body.close()


def _send_streamed(api: RuntimeApi, request_id: str, answer: contract.HttpAnswer) -> None:
    """Prelude and first piece are produced before the POST opens, so an early failure is a
    clean `/error`; once a byte is out, failures can only travel as trailers."""
    try:
        head = answer.prelude_bytes()
        first = answer.body.next_piece()
    except Exception as error:
        _post_error(api, request_id, error)
        answer.body.close()
        return
    stream: ResponseStream | None = None
    try:
        stream = api.open_stream(request_id, contract.HTTP_INTEGRATION_CONTENT_TYPE)
        stream.write(head)
        _check(_pump(stream, first, answer.body, request_id), request_id)
    except OSError as error:
        # Lambda closed the connection (timeout, client gone, sandbox reset): nobody reads more.
        failures.log(ErrorReport.from_exception(error), request_id=request_id, where="stream")
    finally:
        if stream is not None:
            stream.close()
        answer.body.close()


def _pump(stream: ResponseStream, first: bytes | None, body: contract.Body, request_id: str) -> int:
    """Write pieces as they come, one chunk each; end with success or with the error trailers."""
    piece = first
    while piece is not None:
        stream.write(piece)
        try:
            piece = body.next_piece()
        except Exception as error:
            report = ErrorReport.from_exception(error)
            failures.log(report, request_id=request_id, where="body")
            return stream.fail(report)
    return stream.finish()


def _post_error(api: RuntimeApi, request_id: str, error: Exception) -> None:
    report = ErrorReport.from_exception(error, error_type=_error_type(error))
    failures.log(report, request_id=request_id, where="handler")
    _check(api.post_error(request_id, report), request_id)


def _error_type(error: Exception) -> str | None:
    if isinstance(error, contract.MarshalError):
        return "Runtime.MarshalError"
    return None


def _check(status: int, request_id: str) -> None:
    """202 is the only success; anything else (413 too large, 400, 403) is worth a log line."""
    if status != 202:
        failures.warn(f"Runtime API answered {status}", request_id=request_id)
