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


def check_size(body: bytes, limit: int) -> None:
    if len(body) > limit:
        raise RequestTooLargeError(
            f"Request body is {len(body)} bytes; this door accepts at most {limit}."
        )


def parse(body: bytes) -> ParsedBody:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequestError("Request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("Request body must be a JSON object.")
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequestError("You must provide a model parameter.", param="model")
    if len(model) > 256:
        raise InvalidRequestError("The model parameter is too long.", param="model")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequestError("The stream parameter must be a boolean.", param="stream")
    return ParsedBody(data, model, stream)
