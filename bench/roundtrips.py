"""Measure 6: DynamoDB calls per request, counted inside the gateway process (see `bench.tap`).

Each request's calls fall in one of three phases: before the upstream call (on the client's
path to its first byte), during the answer (after the upstream call, before the door closed
the answer — for a stream, before the client has its last byte), and after the door closed the
answer (off the client's path). Warm means the key is in the gateway's key cache.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench import client, payloads
from bench.config import Sizes
from bench.stack import IssuedKey, Stack

PHASES = ("before", "during", "after")


@dataclass(slots=True)
class RequestCalls:
    """One request's DynamoDB calls as (operation, milliseconds), by phase."""

    before: list[tuple[str, float]] = field(default_factory=list)
    during: list[tuple[str, float]] = field(default_factory=list)
    after: list[tuple[str, float]] = field(default_factory=list)

    def phase(self, name: str) -> list[tuple[str, float]]:
        calls: list[tuple[str, float]] = getattr(self, name)
        return calls


def split(marks: list[list[Any]]) -> list[RequestCalls]:
    """The tap's marks (in order, one request at a time) → each request's calls by phase."""
    requests: list[RequestCalls] = []
    phase = "before"
    for kind, detail, ms, *_when in marks:
        if kind == "request":
            requests.append(RequestCalls())
            phase = "before"
        elif kind == "upstream":
            phase = "during"
        elif kind == "closed":
            phase = "after"
        elif kind == "dynamodb" and requests:
            requests[-1].phase(phase).append((str(detail), float(ms)))
    return requests


@dataclass(frozen=True, slots=True)
class PhaseCount:
    calls: int
    """The most calls any of the counted requests made in this phase."""
    uniform: bool
    """Every counted request made the same number of calls in this phase."""
    operations: str
    """E.g. "UpdateItem x2" (from the first request)."""


@dataclass(frozen=True, slots=True)
class KindCount:
    requests: int
    phases: dict[str, PhaseCount]


@dataclass(frozen=True, slots=True)
class RoundTripResult:
    buffered: KindCount
    streamed: KindCount
    cold_before: int
    """Calls before upstream on a key's first request (key-cache miss)."""


def measure(stack: Stack, sizes: Sizes) -> RoundTripResult:
    key = stack.fresh_key()
    buffered = _count(stack, key, sizes.count_requests, stream=False)
    streamed = _count(stack, key, sizes.count_requests, stream=True)
    cold = _calls(stack, stack.issue_key(), 1, stream=False, warm=False)
    return RoundTripResult(buffered, streamed, len(cold[0].before) if cold else -1)


def _count(stack: Stack, key: IssuedKey, count: int, *, stream: bool) -> KindCount:
    calls = _calls(stack, key, count, stream=stream)
    if len(calls) != count:
        raise RuntimeError(f"expected {count} requests in the gateway's marks, got {len(calls)}")
    phases = {}
    for name in PHASES:
        numbers = [len(c.phase(name)) for c in calls]
        operations = Counter(op for op, _ms in calls[0].phase(name))
        phases[name] = PhaseCount(
            max(numbers),
            len(set(numbers)) == 1,
            ", ".join(f"{op} x{n}" if n > 1 else op for op, n in operations.items()) or "none",
        )
    return KindCount(count, phases)


def _calls(
    stack: Stack, key: IssuedKey, count: int, *, stream: bool, warm: bool = True
) -> list[RequestCalls]:
    """Send `count` requests one at a time (each settled) and split the marks they left."""
    target = client.via_gateway(stack.gateway_url, key.secret)
    body = payloads.chat_body(payloads.NON_STREAM_TOKENS, stream=stream)
    timer = client.first_byte if stream else client.timed_post

    def send(http: httpx.Client, admin: httpx.Client) -> None:
        sample = timer(http, target, body, target.prepared(body))
        if sample.request_id:
            stack.settle(admin, sample.request_id)

    with client.new_client() as http, client.new_client() as admin:
        if warm:
            send(http, admin)  # the key cache and the connection pools are warm from here
        stack.admin("marks")
        for _ in range(count):
            send(http, admin)
    return split(stack.admin("marks")["marks"])


def before_upstream_ms(marks: list[list[Any]]) -> list[float]:
    """Per request, the wall-clock milliseconds spent waiting on DynamoDB before the upstream
    call (the union of the calls' intervals). Marks are followed per thread, so this holds for
    concurrent requests too."""
    per_request: list[list[tuple[float, float]]] = []
    open_spans: dict[int, list[tuple[float, float]] | None] = {}
    for kind, _detail, ms, when, thread in marks:
        if kind == "request":
            started: list[tuple[float, float]] = []
            per_request.append(started)
            open_spans[thread] = started
        elif kind == "upstream":
            open_spans[thread] = None
        elif kind == "dynamodb" and (spans := open_spans.get(thread)) is not None:
            spans.append((float(when), float(when) + float(ms) / 1000.0))
    return [_union_ms(spans) for spans in per_request]


def _union_ms(spans: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(spans):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total * 1000.0
