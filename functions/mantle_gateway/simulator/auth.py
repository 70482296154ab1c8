"""Who may call the simulator: a SigV4 signature (the normal case) or a configured bearer token.

Mantle accepts either (reference/mantle-facts.md §2.4); the gateway uses SigV4 by default and a
Bedrock API key per stage as an option, so the simulator checks both and answers refusals with
the 401 bodies Mantle uses.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from .api import ApiError
from .sigv4 import SERVICE, SignatureError, WireRequest, header_values, verify


def authenticate(
    request: WireRequest,
    *,
    region: str,
    credentials: Mapping[str, str],
    bearer_token: str | None,
    now: float,
    max_skew: float,
    service: str = SERVICE,
) -> ApiError | None:
    """None when the caller is accepted, otherwise the 401 to answer with."""
    found = header_values(request.headers).get("authorization")
    if not found:
        return _denied("invalid_api_key", "Missing 'authorization' or 'x-api-key' header")
    scheme, _, token = found[0].strip().partition(" ")
    if scheme.lower() == "bearer":
        if bearer_token is not None and hmac.compare_digest(
            token.strip().encode(), bearer_token.encode()
        ):
            return None
        return _denied("invalid_api_key", "Invalid bearer token")
    try:
        verify(
            request,
            region=region,
            secrets=credentials,
            now=now,
            max_skew=max_skew,
            service=service,
        )
    except SignatureError as error:
        return _denied("invalid_signature", str(error))
    return None


def _denied(code: str, message: str) -> ApiError:
    return ApiError(401, message, type_="permission_denied_error", code=code)
