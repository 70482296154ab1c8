"""The request body of a Lambda HTTP event (both doors carry it the same way)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from mantle_gateway.errors import InvalidRequestError


def body_bytes(event: Mapping[str, Any]) -> bytes:
    """`body` as bytes: base64-decoded when `isBase64Encoded`, else UTF-8 of the text."""
    body = event.get("body")
    if not body:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError("The request body is not valid base64.") from None
    return str(body).encode("utf-8", "surrogatepass")
