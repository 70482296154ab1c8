"""The two ways the bench calls a chat completion: straight to the simulator, or via the gateway.

Direct calls are signed as the gateway signs them (botocore `SigV4Auth`, service
`bedrock-mantle`, the simulator's identity) *before* the clock starts, so "added latency" is
everything the gateway does, its own signing included. Both sides use httpx clients with
keep-alive, one per worker thread, each warmed up before it is timed.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from bench import payloads
from mantle_gateway.simulator import (
    SIMULATOR_ACCESS_KEY,
    SIMULATOR_REGION,
    SIMULATOR_SECRET_KEY,
)

SERVICE = "bedrock-mantle"
REQUEST_ID_HEADER = "x-gateway-request-id"
_CREDENTIALS = ReadOnlyCredentials(SIMULATOR_ACCESS_KEY, SIMULATOR_SECRET_KEY, None)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a request goes and with which headers; `sign` makes a fresh signature each time."""

    url: str
    headers: dict[str, str]
    sign: bool

    def prepared(self, body: bytes) -> dict[str, str]:
        if not self.sign:
            return self.headers
        headers = {**self.headers, "x-amz-content-sha256": hashlib.sha256(body).hexdigest()}
        request = AWSRequest(method="POST", url=self.url, data=body, headers=headers)
        SigV4Auth(_CREDENTIALS, SERVICE, SIMULATOR_REGION).add_auth(request)
        return dict(request.headers.items())


def direct(simulator_url: str, api: str = "chat") -> Target:
    """`api` "chat" (Chat Completions) or "messages" (Anthropic Messages)."""
    if api == "messages":
        headers = {"content-type": "application/json", **payloads.MESSAGES_HEADERS}
        return Target(simulator_url + payloads.MESSAGES_PATH, headers, sign=True)
    return Target(
        simulator_url + payloads.CHAT_PATH, {"content-type": "application/json"}, sign=True
    )


def via_gateway(gateway_url: str, secret: str, api: str = "chat") -> Target:
    if api == "messages":
        headers = {"content-type": "application/json", "x-api-key": secret}
        headers |= payloads.MESSAGES_HEADERS
        return Target(gateway_url + payloads.GATEWAY_MESSAGES_PATH, headers, sign=False)
    return Target(
        gateway_url + payloads.GATEWAY_CHAT_PATH,
        {"content-type": "application/json", "authorization": f"Bearer {secret}"},
        sign=False,
    )


def new_client() -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(60.0),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


@dataclass(frozen=True, slots=True)
class Sample:
    seconds: float
    request_id: str | None
    """The gateway's `x-gateway-request-id` (None from the simulator)."""


def timed_post(
    client: httpx.Client, target: Target, body: bytes, headers: dict[str, str]
) -> Sample:
    """Seconds from sending the request to having the whole answer."""
    start = time.perf_counter()
    answer = client.post(target.url, content=body, headers=headers)
    elapsed = time.perf_counter() - start
    _check(answer)
    return Sample(elapsed, answer.headers.get(REQUEST_ID_HEADER))


@dataclass(frozen=True, slots=True)
class StreamTiming:
    first_byte: float
    """Seconds from sending to the first body byte (the first SSE event)."""
    done: float
    """Seconds from sending to the chunk that carried `data: [DONE]`."""
    total: float
    """Seconds from sending to the end of the body (the chunked encoding's last chunk)."""
    events: int
    size: int
    request_id: str | None


def timed_stream(
    client: httpx.Client, target: Target, body: bytes, headers: dict[str, str]
) -> StreamTiming:
    start = time.perf_counter()
    first = done = 0.0
    events = size = 0
    tail = b""
    with client.stream("POST", target.url, content=body, headers=headers) as answer:
        _check(answer)
        for chunk in answer.iter_raw():
            now = time.perf_counter() - start
            first = first or now
            size += len(chunk)
            # Count blank lines across chunk borders: keep the last byte of each chunk.
            events += payloads.count_events(tail + chunk)
            if b"data: [DONE]" in chunk:
                done = now
            tail = chunk[-1:]
        request_id = answer.headers.get(REQUEST_ID_HEADER)
    return StreamTiming(first, done, time.perf_counter() - start, events, size, request_id)


def first_byte(
    client: httpx.Client, target: Target, body: bytes, headers: dict[str, str]
) -> Sample:
    timing = timed_stream(client, target, body, headers)
    return Sample(timing.first_byte, timing.request_id)


def done_to_end(
    client: httpx.Client, target: Target, body: bytes, headers: dict[str, str]
) -> Sample:
    """How long the body goes on after its last event: ~0 unless work sits before the end."""
    timing = timed_stream(client, target, body, headers)
    return Sample(timing.total - timing.done, timing.request_id)


def _check(answer: httpx.Response) -> None:
    if answer.status_code != 200:
        answer.read()
        raise RuntimeError(f"{answer.request.url} answered {answer.status_code}: {answer.text}")
