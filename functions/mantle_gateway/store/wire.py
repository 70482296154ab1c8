"""DynamoDB's JSON protocol on the request path: one signed POST per call over a pooled transport.

Why not botocore's client here: DynamoDB's low-level API already takes and returns the JSON the
stores build and read, and botocore spent more CPU around each call than the call's own network
(measured against the embedded DynamoDB, keep-alive, an admission UpdateItem: 0.9 ms of CPU per
call through botocore, 0.48 ms here; 0.45 ms less waited per call), and creating its client
loaded the service model at cold start (75 ms). This client signs with the stdlib SigV4 signer
the Mantle calls use (service `dynamodb`), sends over httpx's transport, and keeps botocore's
retry rules (standard mode). botocore stays for the credential chain and the administrative
calls (`Dynamo.client`: tables, the CLI).

Retries, as botocore's standard mode, at most three attempts: throttling and transient error
codes, HTTP 5xx, a transport failure (connect, timeout, reset) and an answer whose CRC32 does
not match, after botocore's jittered backoff for DynamoDB (throttling from 1 s, others from
25 ms). A write retried after its answer was lost may have applied already; the stores' writes
are made for that (decision 0006: an admission finds its own hold, a usage item its own key).
Not kept: botocore's client-side retry quota, which only matters to a process that sees
DynamoDB failing for most calls at once.
"""

from __future__ import annotations

import json
import random
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from mantle_gateway.errors import UpstreamError

if TYPE_CHECKING:
    from mantle_gateway.upstream.signing import CredentialSource

_CONTENT_TYPE = "application/x-amz-json-1.0"
_TARGET_PREFIX = "DynamoDB_20120810."
MAX_ATTEMPTS = 3
_THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
"""botocore's throttling codes (retries/standard.py): retried after the long backoff."""
_TRANSIENT = frozenset({"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"})
_THROTTLING_SCALE = 1.0
_OTHER_SCALE = 0.025
"""Seconds: botocore's backoff bases for DynamoDB (random() * base * 2 ** (attempt - 1))."""
_MAX_BACKOFF = 20.0


class WireError(Exception):
    """DynamoDB answered with an error (`answer` is its JSON: `Item`, `CancellationReasons`, …),
    or gave no answer (`code` names the transport failure, `answer` is empty)."""

    def __init__(self, code: str, message: str, answer: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.answer = answer or {}


def pooled_transport() -> httpx.HTTPTransport:
    """The connection pool a client's calls go over (a transport wrapped around it for tests or
    the bench uses the same pool)."""
    return httpx.HTTPTransport(
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)
    )


def endpoint_for(region: str) -> str:
    """DynamoDB's public endpoint in `region` (the China partition has its own domain)."""
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://dynamodb.{region}.{domain}/"


class WireClient:
    """The calls the stores make, named as botocore names them, taking its keyword arguments
    and returning its answer without `ResponseMetadata`."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        credentials: CredentialSource,
        *,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from mantle_gateway.upstream.signing import SigV4Signer

        self._url = endpoint_url.rstrip("/") + "/"
        self._parsed_url = httpx.URL(self._url)  # parsed once, not for every request (~15 µs)
        self._signer = SigV4Signer(credentials, region, service="dynamodb")
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout).as_dict()
        self._transport = transport or pooled_transport()
        self._sleep = sleep

    def get_item(self, **params: Any) -> dict[str, Any]:
        return self.call("GetItem", params)

    def put_item(self, **params: Any) -> dict[str, Any]:
        return self.call("PutItem", params)

    def update_item(self, **params: Any) -> dict[str, Any]:
        return self.call("UpdateItem", params)

    def query(self, **params: Any) -> dict[str, Any]:
        return self.call("Query", params)

    def scan(self, **params: Any) -> dict[str, Any]:
        return self.call("Scan", params)

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        return self.call("TransactWriteItems", params)

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(params, separators=(",", ":")).encode()
        target = {"content-type": _CONTENT_TYPE, "x-amz-target": _TARGET_PREFIX + operation}
        attempt = 1
        while True:
            try:
                return self._send(target, body)
            except _Retry as retry:
                if attempt >= MAX_ATTEMPTS:
                    raise retry.error from retry.__cause__
                scale = _THROTTLING_SCALE if retry.error.code in _THROTTLING else _OTHER_SCALE
                self._sleep(min(random.random() * scale * 2 ** (attempt - 1), _MAX_BACKOFF))
                attempt += 1

    def _send(self, target: dict[str, str], body: bytes) -> dict[str, Any]:
        # Signed on every attempt: the signature carries the time.
        try:
            headers = self._signer.sign("POST", self._url, target, body)
        except UpstreamError as exc:  # no credentials to sign with
            raise WireError("NoCredentials", exc.message) from exc
        request = httpx.Request(
            "POST",
            self._parsed_url,
            headers=headers,
            content=body,
            extensions={"timeout": self._timeout},
        )
        try:
            response = self._transport.handle_request(request)
            try:
                content = response.read()
            finally:
                response.close()
        except httpx.TransportError as exc:
            raise _Retry(WireError(type(exc).__name__, "no answer from DynamoDB")) from exc
        checksum = response.headers.get("x-amz-crc32")
        if checksum is not None and checksum != str(zlib.crc32(content)):
            raise _Retry(WireError("CRC32CheckFailed", "the answer did not match its checksum"))
        if response.status_code == 200:
            answer: dict[str, Any] = json.loads(content)
            return answer
        error = _error(response.status_code, content)
        if error.code in _THROTTLING or error.code in _TRANSIENT or response.status_code >= 500:
            raise _Retry(error)
        raise error


class _Retry(Exception):
    def __init__(self, error: WireError) -> None:
        super().__init__(error.code)
        self.error = error


def _error(status: int, content: bytes) -> WireError:
    """DynamoDB's error JSON: `__type` ("…#ConditionalCheckFailedException") and `message`."""
    try:
        answer = json.loads(content)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return WireError(f"HTTP{status}", "DynamoDB answered without an error body")
    code = str(answer.get("__type", "")).rpartition("#")[2] or f"HTTP{status}"
    message = str(answer.get("message") or answer.get("Message") or "")
    return WireError(code, message, answer)
