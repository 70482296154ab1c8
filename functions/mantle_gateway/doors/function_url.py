"""Function URL door: payload format 2.0 events ↔ messages (cookies travel in their own array).

Request: https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-request-payload
Response: https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-response-payload

`to_prelude` gives the keys of the streaming runtime's HTTP answer
(layers/streaming_runtime/streaming_runtime/contract.py) that become the prelude: `statusCode`,
`headers` and `cookies`; `lambda_entry` adds the body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mantle_gateway.doors.payload import body_bytes
from mantle_gateway.messages import GatewayRequest, GatewayResponse, normalize_headers

DOOR = "function_url"


def matches(event: Mapping[str, Any]) -> bool:
    """Payload 2.0 carries `version: "2.0"` and `rawPath` (HTTP APIs send the same shape)."""
    return event.get("version") == "2.0" and "rawPath" in event


def to_request(
    event: Mapping[str, Any], *, request_id: str, deadline: float | None
) -> GatewayRequest:
    http = (event.get("requestContext") or {}).get("http") or {}
    return GatewayRequest(
        method=str(http.get("method") or "GET").upper(),
        path=api_path(event),
        # Already percent-encoded as the client sent it: forwarded upstream as is.
        query=str(event.get("rawQueryString") or ""),
        headers=_headers(event),
        body=body_bytes(event),
        door=DOOR,
        deadline=deadline,
        request_id=request_id,
    )


def api_path(event: Mapping[str, Any]) -> str:
    return str(event.get("rawPath") or "/")


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    """Lambda joins repeated headers with commas and moves `Cookie` into `cookies`; put it back."""
    pairs: list[tuple[str, str]] = [
        (str(name), str(value)) for name, value in (event.get("headers") or {}).items()
    ]
    pairs.extend(("cookie", str(cookie)) for cookie in event.get("cookies") or ())
    return normalize_headers(pairs)


def to_prelude(response: GatewayResponse) -> dict[str, object]:
    """`Set-Cookie` values go to `cookies`, one per cookie; other repeats are comma-joined."""
    headers, cookies = split_cookies(response.headers)
    return {"statusCode": response.status, "headers": headers, "cookies": cookies}


def split_cookies(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Names compare case-insensitively; the first spelling seen is kept."""
    headers: dict[str, str] = {}
    spelling: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in pairs:
        key = name.lower()
        if key == "set-cookie":
            cookies.append(value)
        elif key in spelling:
            headers[spelling[key]] = f"{headers[spelling[key]]}, {value}"
        else:
            spelling[key] = name
            headers[name] = value
    return headers, cookies
