"""Body checks before anything else is spent on a request: size (413), JSON object, model (400).

The body is parsed once here; the pipeline keeps the parsed object for the model check, the
stream flag and the usage injection, and forwards the original bytes whenever it changes nothing.
Because those bytes go up as they are, the gateway must read them exactly as Mantle will: a key
repeated in any object (`{"model":"a","model":"b"}`) is refused, since parsers disagree on which
one wins (Python's keeps the last, others the first) and the allow-list would check one model
while another runs. `NaN` and `Infinity` are not JSON (RFC 8259) and are refused too.
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


def _quoted(key: str) -> str:
    """The repeated key, echoed only when short and printable (it is the client's own text)."""
    if len(key) <= 64 and _printable_text(key):
        return json.dumps(key, ensure_ascii=False)
    return "(a long or unprintable key)"


def check_size(body: bytes, limit: int) -> None:
    if len(body) > limit:
        raise RequestTooLargeError(
            f"Request body is {len(body)} bytes; this door accepts at most {limit}."
        )


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook`: the object as `json` builds it, unless a key is repeated in it.
    One dict build and one length comparison per object, so the check costs next to nothing."""
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return data


def _not_json(constant: str) -> Any:
    """`parse_constant`: NaN, Infinity and -Infinity are Python's extension, not JSON."""
    raise ValueError(constant)


def parse(body: bytes) -> ParsedBody:
    try:
        # Strict UTF-8 first: json.loads(bytes) would let encoded surrogates through.
        data = json.loads(
            body.decode("utf-8"), object_pairs_hook=_unique_object, parse_constant=_not_json
        )
    except _RepeatedKey as repeated:
        raise InvalidRequestError(
            f"Request body repeats the key {_quoted(repeated.key)} in one JSON object; "
            "each key may appear once."
        ) from None
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
