"""The Lambda Runtime API over HTTP/1.1 on loopback, with the standard library's `http.client`.

Endpoints (API version 2018-06-01, host:port from `AWS_LAMBDA_RUNTIME_API`),
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html:

    GET  /runtime/invocation/next             long poll for the next event, no timeout
    POST /runtime/invocation/{id}/response    buffered body, or chunked stream (below)
    POST /runtime/invocation/{id}/error       before any response byte was sent
    POST /runtime/init/error                  the handler could not be loaded

A streamed response (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html#runtimes-custom-response-streaming)
sets `Lambda-Runtime-Function-Response-Mode: streaming` and `Transfer-Encoding: chunked`, declares
the two error trailers up front (HTTP/1.1 requires it), and closes the connection when done.
`http.client` can chunk a body but cannot send trailers, so `ResponseStream` frames every chunk
by hand: `<hex size>\\r\\n<data>\\r\\n`, then `0\\r\\n`, the trailers if it failed, `\\r\\n`.

Each call uses its own connection: the API is on loopback, so connecting costs microseconds, and a
connection never outlives a frozen sandbox in a half-read state.
"""

from __future__ import annotations

import http.client
from types import TracebackType

from streaming_runtime.context import Invocation
from streaming_runtime.failures import ErrorReport

API_VERSION = "2018-06-01"
ERROR_TYPE = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY = "Lambda-Runtime-Function-Error-Body"
RESPONSE_MODE = "Lambda-Runtime-Function-Response-Mode"


class RuntimeApiError(RuntimeError):
    """The Runtime API answered `/next` with something other than an event."""


class RuntimeApi:
    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"AWS_LAMBDA_RUNTIME_API: {address!r} is not host:port")
        self._host = host
        self._port = int(port)

    def _connect(self) -> http.client.HTTPConnection:
        # No timeout: `/next` may wait for minutes, the sandbox frozen in between (runtimes-api).
        return http.client.HTTPConnection(self._host, self._port, timeout=None)

    def next_invocation(self) -> Invocation:
        conn = self._connect()
        try:
            conn.request("GET", f"/{API_VERSION}/runtime/invocation/next")
            response = conn.getresponse()
            event = response.read()
            if response.status != 200:
                raise RuntimeApiError(f"/next answered {response.status}: {event[:200]!r}")
            headers = response.headers
            return Invocation(
                request_id=headers.get("Lambda-Runtime-Aws-Request-Id", ""),
                deadline_ms=int(headers.get("Lambda-Runtime-Deadline-Ms") or 0),
                invoked_function_arn=headers.get("Lambda-Runtime-Invoked-Function-Arn", ""),
                event=event,
                trace_id=headers.get("Lambda-Runtime-Trace-Id"),
                client_context=headers.get("Lambda-Runtime-Client-Context"),
                cognito_identity=headers.get("Lambda-Runtime-Cognito-Identity"),
                tenant_id=headers.get("Lambda-Runtime-Aws-Tenant-Id"),
            )
        finally:
            conn.close()

    def post_response(self, request_id: str, payload: bytes, content_type: str) -> int:
        """A buffered response: the whole payload, Content-Length framed. Returns the status."""
        path = f"/{API_VERSION}/runtime/invocation/{request_id}/response"
        return self._post(path, payload, {"Content-Type": content_type})

    def post_error(self, request_id: str, report: ErrorReport) -> int:
        """Only valid before any byte of a response was sent."""
        path = f"/{API_VERSION}/runtime/invocation/{request_id}/error"
        return self._post(path, report.document(), _error_headers(report))

    def post_init_error(self, report: ErrorReport) -> int:
        path = f"/{API_VERSION}/runtime/init/error"
        return self._post(path, report.document(), _error_headers(report))

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        conn = self._connect()
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def open_stream(self, request_id: str, content_type: str) -> ResponseStream:
        """Start a streamed response: headers go out now, chunks as they are written."""
        conn = self._connect()
        try:
            path = f"/{API_VERSION}/runtime/invocation/{request_id}/response"
            conn.putrequest("POST", path, skip_accept_encoding=True)
            conn.putheader(RESPONSE_MODE, "streaming")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.putheader("Trailer", f"{ERROR_TYPE}, {ERROR_BODY}")
            conn.putheader("Content-Type", content_type)
            conn.endheaders()
        except BaseException:
            conn.close()
            raise
        return ResponseStream(conn)


def _error_headers(report: ErrorReport) -> dict[str, str]:
    """The header carries the same type as the document's `errorType` (and as the trailer of a
    stream that fails later): the exception's class name, or a `Runtime.*` category the runtime
    chose. The API takes any string and recommends `<category.reason>` (runtimes-api,
    "Invocation error"); AWS's curl examples send a fixed `Unhandled`, which says nothing about
    what failed."""
    return {ERROR_TYPE: report.error_type, "Content-Type": "application/json"}


class ResponseStream:
    """One streamed `/response`: `write` each piece, then `finish` or `fail`, then `close`."""

    def __init__(self, conn: http.client.HTTPConnection) -> None:
        self._conn = conn

    def write(self, data: bytes) -> None:
        """One HTTP chunk per piece, sent at once (http.client sets TCP_NODELAY)."""
        if data:
            self._conn.send(b"%X\r\n%b\r\n" % (len(data), data))

    def finish(self) -> int:
        """The terminating zero-length chunk, no trailers: a successful response."""
        self._conn.send(b"0\r\n\r\n")
        return self._status()

    def fail(self, report: ErrorReport) -> int:
        """The terminating chunk followed by the two error trailers Lambda forwards as the error."""
        trailers = (
            f"0\r\n{ERROR_TYPE}: {report.error_type}\r\n"
            f"{ERROR_BODY}: {report.trailer_value()}\r\n\r\n"
        )
        self._conn.send(trailers.encode("ascii"))
        return self._status()

    def _status(self) -> int:
        response = self._conn.getresponse()
        response.read()
        return response.status

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResponseStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
