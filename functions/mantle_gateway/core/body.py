"""Body checks before anything else is spent on a request: size (413), JSON object, model (400).

The body is parsed once here; the pipeline keeps the parsed object for the model check, the
stream flag and the usage injection, and forwards the original bytes whenever it changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mantle_gateway.errors import InvalidRequestError, RequestTooLargeError


@dataclass(frozen=True, slots=True)
class ParsedBody:
    data: dict[str, Any]
    model: str
    stream: bool


def _printable_text(value: str) -> bool:
    """Printable and valid Unicode (a JSON `\\ud800` escape is neither): the model id is
    written to the ledger and the logs, which must never fail to encode it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return value.isprintable()


def check_size(body: bytes, limit: int) -> None:
    if len(body) > limit:
        raise RequestTooLargeError(
            f"Request body is {len(body)} bytes; this door accepts at most {limit}."
        )


def parse(body: bytes) -> ParsedBody:
    try:
        # Strict UTF-8 first: json.loads(bytes) would let encoded surrogates through.
        data = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise InvalidRequestError("Request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("Request body must be a JSON object.")
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequestError("You must provide a model parameter.", param="model")
    if len(model) > 256 or not _printable_text(model):
        raise InvalidRequestError("The model parameter is not a valid model id.", param="model")
    stream = data.get("stream")
    if stream is None:
        stream = False  # OpenAI documents `stream` as "boolean or null"
    if not isinstance(stream, bool):
        raise InvalidRequestError("The stream parameter must be a boolean.", param="stream")
    return ParsedBody(data, model, stream)
