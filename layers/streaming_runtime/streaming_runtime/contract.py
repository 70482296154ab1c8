"""The contract between a handler and this runtime: what a handler returns, the bytes it becomes.

A handler is `module.function(event, context)`, imported once per process from `_HANDLER`.
What it returns is one of two things:

1. An **HTTP answer**: a mapping with an int `"statusCode"`. This is the Lambda proxy response
   shape that API Gateway and Function URLs already read
   (https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-output-format,
   https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-response-payload),
   with one extension: `"body"` may be an iterable of bytes, sent one chunk per piece.

       statusCode         int, required
       headers            dict[str, str]            always sent (default {})
       multiValueHeaders  dict[str, list[str]]      sent only if given (REST API)
       cookies            list[str]                 sent only if given (Function URL, payload 2.0)
       body               None | str | bytes | Iterable[bytes | str]
       isBase64Encoded    bool: a str body is base64 of the bytes to send

   Every key except `body` and `isBase64Encoded` goes into the prelude, so the handler (the door)
   decides the header shape its front end wants; the runtime adds nothing.

   If the body has `close()` (the iterable's, else its iterator's), the runtime calls it exactly
   once, when it is done with the body: after the last byte went out and Lambda acknowledged the
   response, after an error was reported, or when it gave up because the Runtime API connection
   dropped. Not pulled to the end before `close()` means nobody reads the rest. The client has
   its answer by then, so `close()` is where a producer does slow bookkeeping; the runtime logs
   what `close()` raises and carries on.

2. **Anything else**: serialized with `json.dumps` and sent buffered as `application/json`, as the
   managed runtime does. Not serializable: `Runtime.MarshalError`.

How an HTTP answer is sent depends on the function's response mode (`bootstrap`):

* streaming: `POST .../response` with `application/vnd.awslambda.http-integration-response`; the
  body is the prelude JSON, eight NUL bytes, then the pieces. An error raised by the body after
  the first byte becomes the two error trailers; before it, `/error`
  (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html#runtimes-custom-response-streaming).
* buffered: the body is drained and the answer sent as the proxy JSON above, with the body as
  UTF-8 text when it decodes, else base64 with `isBase64Encoded: true`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from streaming_runtime import failures
from streaming_runtime.failures import ErrorReport

HTTP_INTEGRATION_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
"""Tells Lambda the stream opens with a prelude (status, headers, cookies) for the front end."""

PRELUDE_DELIMITER = b"\x00" * 8
"""Eight NUL bytes end the prelude. JSON escapes U+0000, so the prelude itself never holds one."""

MAX_PRELUDE_BYTES = 16 * 1024
"""API Gateway reads the metadata from the first 16 KB of the stream (a secondary source, see
shared/reference/lambda-streaming-facts.md §1.3): the prelude plus delimiter must fit."""

_PRELUDE_KEYS = ("statusCode", "headers", "multiValueHeaders", "cookies")


class ContractError(ValueError):
    """The handler returned something this contract does not describe."""


class MarshalError(ContractError):
    """A plain result that `json.dumps` refuses (the managed runtime's `Runtime.MarshalError`)."""


class Body:
    """The pieces of an HTTP answer's body, pulled one at a time, then closed once."""

    def __init__(self, source: Iterable[object]) -> None:
        self._source = source
        self._pieces: Iterator[object] = iter(source)
        self._closed = False

    def next_piece(self) -> bytes | None:
        """The next non-empty piece, or None at the end. Raises whatever the body raises.

        Empty pieces are skipped: framed as a chunk, zero bytes would end the HTTP body.
        """
        while True:
            try:
                piece = next(self._pieces)
            except StopIteration:
                return None
            data = _as_bytes(piece)
            if data:
                return data

    def drain(self) -> bytes:
        parts: list[bytes] = []
        while (piece := self.next_piece()) is not None:
            parts.append(piece)
        return b"".join(parts)

    def close(self) -> None:
        """Once, whether or not the body was exhausted; what `close()` raises is logged."""
        if self._closed:
            return
        self._closed = True
        close = _closer(self._source) or _closer(self._pieces)
        if close is None:
            return
        try:
            close()
        except Exception as error:
            failures.log(ErrorReport.from_exception(error), request_id=None, where="body.close")


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    prelude: Mapping[str, object]
    body: Body

    def prelude_bytes(self) -> bytes:
        """The prelude JSON followed by the delimiter: the first chunk of every stream."""
        encoded = json.dumps(self.prelude, separators=(",", ":")).encode("ascii")
        if len(encoded) + len(PRELUDE_DELIMITER) > MAX_PRELUDE_BYTES:
            raise ContractError(
                f"HTTP answer prelude is {len(encoded)} bytes; at most "
                f"{MAX_PRELUDE_BYTES - len(PRELUDE_DELIMITER)} fit (too many or too long headers)"
            )
        return encoded + PRELUDE_DELIMITER

    def buffered_document(self) -> bytes:
        """The whole answer as the proxy JSON a buffered invocation returns (drains the body)."""
        data = self.body.drain()
        result: dict[str, object] = dict(self.prelude)
        try:
            result["body"] = data.decode("utf-8")
            result["isBase64Encoded"] = False
        except UnicodeDecodeError:
            result["body"] = base64.b64encode(data).decode("ascii")
            result["isBase64Encoded"] = True
        return json.dumps(result, separators=(",", ":")).encode()


def interpret(result: object) -> HttpAnswer | bytes:
    """An HTTP answer, or the JSON bytes of a plain result."""
    if isinstance(result, Mapping) and "statusCode" in result:
        return _http_answer(result)
    try:
        return json.dumps(result).encode()
    except (TypeError, ValueError) as error:
        raise MarshalError(f"Unable to marshal response: {error}") from error


def _http_answer(result: Mapping[str, Any]) -> HttpAnswer:
    status = result["statusCode"]
    body = Body(_body_source(result))
    try:
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise ContractError(f"statusCode must be an int from 100 to 599, not {status!r}")
        prelude: dict[str, object] = {"statusCode": status, "headers": _headers(result)}
        for key in _PRELUDE_KEYS[2:]:
            if key in result:
                prelude[key] = _checked(key, result[key])
    except ContractError:
        body.close()
        raise
    return HttpAnswer(prelude, body)


def _headers(result: Mapping[str, Any]) -> dict[str, str]:
    headers = result.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ContractError("headers must map str to str")
    return dict(headers)


def _checked(key: str, value: object) -> object:
    if key == "cookies":
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise ContractError("cookies must be a list of str")
        return list(value)
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(i, str) for i in v)
        for k, v in value.items()
    ):
        raise ContractError("multiValueHeaders must map str to a list of str")
    return {k: list(v) for k, v in value.items()}


def _body_source(result: Mapping[str, Any]) -> Iterable[object]:
    body = result.get("body")
    if body is None:
        return ()
    if isinstance(body, str):
        if result.get("isBase64Encoded"):
            try:
                return (base64.b64decode(body, validate=True),)
            except binascii.Error as error:
                raise ContractError("isBase64Encoded is true but body is not base64") from error
        return (body.encode("utf-8"),)
    if isinstance(body, bytes | bytearray | memoryview):
        return (bytes(body),)
    if isinstance(body, Iterable):
        return body
    raise ContractError(f"body must be str, bytes or an iterable of bytes, not {type(body)}")


def _as_bytes(piece: object) -> bytes:
    if isinstance(piece, bytes):
        return piece
    if isinstance(piece, bytearray | memoryview):
        return bytes(piece)
    if isinstance(piece, str):
        return piece.encode("utf-8")
    raise ContractError(f"a body piece must be bytes or str, not {type(piece).__name__}")


def _closer(thing: object) -> Callable[[], object] | None:
    close = getattr(thing, "close", None)
    return close if callable(close) else None
