"""What a secret looks like inside free text: a gateway key, a bearer value, a Bedrock API key.

The log filter masks these (`observability`) and the upstream query drops parameters holding
them (`upstream/signing.py`), from this one definition. Standard library only, so the signing
path does not load the logger (and botocore under it).
"""

from __future__ import annotations

import re

_SECRET = re.compile(
    r"(mgw_[A-Za-z0-9_-]{8,}|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}|bedrock-api-key-[A-Za-z0-9+/=]+)"
)


def redact(text: str) -> str:
    return _SECRET.sub("[REDACTED]", text)


def looks_secret(text: str) -> bool:
    """Whether `text` holds something the log filter would mask: such a value is never
    forwarded either."""
    return _SECRET.search(text) is not None
