"""EventBridge PutEvents on the default bus, signed with the function's role.

One small JSON POST (`AWSEvents.PutEvents`, the awsJson1.1 protocol) signed by the same stdlib
SigV4 signer the Mantle calls use, with service `events`: botocore's `events` client would need
its service model, which the Lambda bundle trims away (infra/packaging.py keeps DynamoDB's), and
its import on the request path. Sent rarely (once per key, month and threshold), so the client
is made on first use.
https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from mantle_gateway.upstream.signing import Signer

DEFAULT_BUS = "default"
_TARGET = "AWSEvents.PutEvents"
_CONTENT_TYPE = "application/x-amz-json-1.1"


class EventsError(Exception):
    """EventBridge did not accept the event (refused, or an entry failed); safe to retry."""


def endpoint_for(region: str) -> str:
    return f"https://events.{region}.amazonaws.com"


class EventBridge:
    def __init__(
        self,
        signer: Signer,
        endpoint_url: str,
        *,
        timeout_seconds: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._signer = signer
        self._url = endpoint_url.rstrip("/") + "/"
        self._timeout = timeout_seconds
        self._transport = transport
        self._client: httpx.Client | None = None

    def put(self, source: str, detail_type: str, detail: Mapping[str, Any]) -> None:
        """Send one event to the default bus; raises EventsError (or httpx's) when not accepted."""
        entry = {
            "Source": source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, separators=(",", ":")),
            "EventBusName": DEFAULT_BUS,
        }
        body = json.dumps({"Entries": [entry]}, separators=(",", ":")).encode()
        headers = {"content-type": _CONTENT_TYPE, "x-amz-target": _TARGET}
        signed = self._signer.sign("POST", self._url, headers, body)
        response = self._http().post(self._url, headers=signed, content=body)
        if response.status_code != 200:
            raise EventsError(f"PutEvents answered {response.status_code}: {_error(response)}")
        answer = response.json()
        if answer.get("FailedEntryCount"):
            failed = (answer.get("Entries") or [{}])[0]
            raise EventsError(f"PutEvents refused the entry: {failed.get('ErrorCode')}")

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout, transport=self._transport)
        return self._client


def _error(response: httpx.Response) -> str:
    """AWS's error type (`__type`), never the body itself."""
    try:
        kind = response.json().get("__type", "")
    except ValueError:
        kind = ""
    return str(kind).rsplit("#", 1)[-1] or "no error type"
