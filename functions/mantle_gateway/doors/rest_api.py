"""REST API door: Lambda proxy (v1) events ↔ messages (base64 bodies, multi-value, 6 MB bound).

Request: https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-input-format
Response: https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-output-format
Streaming: https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode-lambda.html
(the prelude takes `statusCode`, `headers`, `multiValueHeaders`, `cookies`).

`to_prelude` gives the keys of the streaming runtime's HTTP answer
(layers/streaming_runtime/streaming_runtime/contract.py) that become the prelude; `lambda_entry`
adds the body. Repeated response headers and `Set-Cookie` go to `multiValueHeaders`; no `cookies`
key, which a buffered REST integration would reject as a malformed proxy response.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from mantle_gateway.doors.payload import body_bytes
from mantle_gateway.errors import RequestTooLargeError
from mantle_gateway.messages import GatewayRequest, GatewayResponse, normalize_headers

DOOR = "rest_api"

MAX_REQUEST_BYTES = 6_291_456
"""Lambda's synchronous invocation payload bound (6 MB); API Gateway itself accepts 10 MB.
https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"""

MAX_SILENCE_SECONDS = 285.0
"""The longest this door waits for the upstream's next bytes. API Gateway ends a REST stream that
has been idle for 5 minutes on regional endpoints (the stack's type), and a non-streamed answer
sends nothing until it is complete, so a longer wait would end in a cut connection instead of an
OpenAI-shaped 504. 300 s less what may already be silent before the wait starts: a cold start
(Lambda's init phase is limited to 10 s) and the upstream connect (5 s by default)
(docs/decisions/0001, "The REST door's silence")."""


_PARAMETER = re.compile(r"\{([^{}+]+)\+?\}")


def matches(event: Mapping[str, Any]) -> bool:
    return "httpMethod" in event and "requestContext" in event


def to_request(
    event: Mapping[str, Any], *, request_id: str, deadline: float | None
) -> GatewayRequest:
    """Raises `RequestTooLargeError` (413) for a body over the bound, before the core runs."""
    body = body_bytes(event)
    if len(body) > MAX_REQUEST_BYTES:
        raise RequestTooLargeError(
            f"Request body is {len(body)} bytes; this endpoint accepts at most "
            f"{MAX_REQUEST_BYTES} bytes."
        )
    return GatewayRequest(
        method=str(event.get("httpMethod") or "GET").upper(),
        path=api_path(event),
        query=raw_query(event),
        headers=_headers(event),
        body=body,
        door=DOOR,
        deadline=deadline,
        max_silence=MAX_SILENCE_SECONDS,
        request_id=request_id,
    )


def api_path(event: Mapping[str, Any]) -> str:
    """The path as the API defines it, so `/openai/v1/...` reaches the core whatever the URL.

    `path` drops the stage on the execute-api endpoint but keeps a custom domain's base path
    (and the stage when the mapping names none); `requestContext.path` keeps the stage
    (localstack/localstack#12296 documents the cases measured on AWS). Only the resource
    template with its path parameters is the same in every case, so it goes first.
    """
    resource = event.get("resource")
    parameters = event.get("pathParameters") or {}
    if isinstance(resource, str) and resource.startswith("/"):
        rebuilt = _fill(resource, parameters)
        if rebuilt is not None:
            return rebuilt
    path = str(event.get("path") or "/")
    context = event.get("requestContext") or {}
    stage = context.get("stage")
    if stage and context.get("path") == path and path.startswith(f"/{stage}/"):
        return path[len(stage) + 1 :]
    return path


def _fill(template: str, parameters: Mapping[str, Any]) -> str | None:
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        found = parameters.get(match.group(1))
        if found is None:
            missing = True
            return ""
        return str(found)

    rebuilt = _PARAMETER.sub(value, template)
    return None if missing else rebuilt


def raw_query(event: Mapping[str, Any]) -> str:
    """API Gateway hands over decoded values; encode them again, repeats kept, in order."""
    multi = event.get("multiValueQueryStringParameters")
    if multi:
        pairs = [(str(k), str(v)) for k, values in multi.items() for v in values or ()]
    else:
        pairs = [(str(k), str(v)) for k, v in (event.get("queryStringParameters") or {}).items()]
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    multi = event.get("multiValueHeaders")
    if multi:
        pairs = [(str(k), str(v)) for k, values in multi.items() for v in values or ()]
    else:
        pairs = [(str(k), str(v)) for k, v in (event.get("headers") or {}).items()]
    return normalize_headers(pairs)


def to_prelude(response: GatewayResponse) -> dict[str, object]:
    headers, multi = group_headers(response.headers)
    prelude: dict[str, object] = {"statusCode": response.status, "headers": headers}
    if multi:
        prelude["multiValueHeaders"] = multi
    return prelude


def group_headers(
    pairs: Iterable[tuple[str, str]],
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Single values to `headers`; repeats and every `Set-Cookie` to `multiValueHeaders` only,
    since API Gateway merges the two maps. Names compare case-insensitively, first spelling kept.
    """
    grouped: dict[str, list[str]] = {}
    spelling: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        spelling.setdefault(key, name)
        grouped.setdefault(spelling[key], []).append(value)
    headers: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, values in grouped.items():
        if len(values) == 1 and name.lower() != "set-cookie":
            headers[name] = values[0]
        else:
            multi[name] = values
    return headers, multi
