"""Measure 2: the gateway's own CPU per request, DynamoDB excluded.

The real `Gateway` runs in this process with in-memory stores (`bench.fakes`) and an
`httpx.MockTransport` upstream, so `time.process_time()` around `handle()` + reading the body +
`close()` is the core's own work: routing, body parse, key check, SigV4 signing, the httpx
client, JSON usage extraction, the usage record and its cost. Not included: the door's HTTP
parsing and writing, real sockets, and the DynamoDB calls' JSON, signing and HTTP (the
live measure in `bench.latency` reports the gateway process's whole CPU per request).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from dataclasses import dataclass

from bench import fakes
from bench.config import Sizes
from bench.stats import median
from mantle_gateway.core.pipeline import Gateway
from mantle_gateway.messages import GatewayRequest

STREAM_TOKENS = 16
_WARMUP = 50


@dataclass(frozen=True, slots=True)
class CpuResult:
    buffered_seconds: float
    """Median CPU seconds per non-streamed chat request."""
    streamed_seconds: float
    """Median CPU seconds per streamed chat request of `STREAM_TOKENS` tokens."""


def measure(sizes: Sizes) -> CpuResult:
    gateway, ledger = fakes.in_process_gateway(STREAM_TOKENS)
    buffered = fakes.chat_request(stream=False)
    streamed = fakes.chat_request(stream=True, max_tokens=STREAM_TOKENS)
    runs = [_per_request(gateway, buffered, sizes.cpu_requests) for _ in range(sizes.repeats)]
    stream_runs = [
        _per_request(gateway, streamed, max(1, sizes.cpu_requests // 4))
        for _ in range(sizes.repeats)
    ]
    if ledger.records == 0:
        raise RuntimeError("the in-process gateway recorded no usage: the measure is broken")
    return CpuResult(median(runs), median(stream_runs))


def _per_request(gateway: Gateway, request: GatewayRequest, count: int) -> float:
    for _ in range(_WARMUP):
        _one(gateway, request)
    start = time.process_time()
    for _ in range(count):
        _one(gateway, request)
    return (time.process_time() - start) / count


def _one(gateway: Gateway, request: GatewayRequest) -> None:
    response = gateway.handle(request)
    if response.status != 200:
        raise RuntimeError(f"in-process gateway answered {response.status}: {response.body!r}")
    if not isinstance(response.body, bytes):
        for _chunk in response.body:
            pass
    response.close()


def profile(count: int = 2_000, lines: int = 30) -> str:
    """cProfile of non-streamed `handle()` calls, by own time: where the CPU goes (`--profile`)."""
    gateway, _ledger = fakes.in_process_gateway(STREAM_TOKENS)
    request = fakes.chat_request(stream=False)
    for _ in range(_WARMUP):
        _one(gateway, request)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        _one(gateway, request)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(lines)
    stats.sort_stats("cumulative").print_stats(lines)
    return out.getvalue()
