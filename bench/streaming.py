"""Measure 4: SSE relay throughput and the gateway's memory while relaying a long stream.

Through the network, a chat stream of `stream_events` tokens (the simulator sends one event per
token) is read directly and via the gateway; events/s counts what the client received from
sending the request to the end of the body. The simulator itself is the ceiling of that figure,
so the relay is also measured in this process without any network: the simulator's own frames
(usage chunk included, as the gateway asks for it) fed through `mantle_gateway.stream.relay.Relay`
with usage extraction and stripping on, one event per chunk (what a paced upstream delivers)
and in 16 KiB chunks (a burst read from a socket, events split across chunk borders).
"""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass

from bench import client, payloads
from bench.config import Sizes
from bench.stack import Stack
from bench.stats import median
from mantle_gateway.stream.relay import Observation, Relay

BURST_CHUNK = 16 * 1024


@dataclass(frozen=True, slots=True)
class NetworkStream:
    events: int
    direct_events_per_second: float
    gateway_events_per_second: float
    gateway_rss_idle_kib: float
    """Resident set of the gateway process just before the stream."""
    gateway_rss_peak_kib: float
    """Its high-water mark while relaying (reset just before the stream)."""
    gateway_cpu_per_event: float
    """CPU seconds the gateway process spent per relayed event (read, relay, write)."""


@dataclass(frozen=True, slots=True)
class InProcessRelay:
    events: int
    per_event_chunks: float
    """Events/s, one event per chunk."""
    burst_chunks: float
    """Events/s, 16 KiB chunks."""
    traced_peak_bytes: int
    """tracemalloc peak while relaying (input excluded: it is built before tracing starts)."""


def through_gateway(stack: Stack, sizes: Sizes) -> NetworkStream:
    direct = client.direct(stack.simulator_url)
    gateway = client.via_gateway(stack.gateway_url, stack.fresh_key().secret)
    body = payloads.chat_body(sizes.stream_events, stream=True)
    direct_rates, gateway_rates, idle, peak, cpu = [], [], [], [], []
    events = 0
    with client.new_client() as to_sim, client.new_client() as to_gw, client.new_client() as admin:
        client.timed_stream(to_sim, direct, body, direct.prepared(body))  # warm-up, both sides
        warm = client.timed_stream(to_gw, gateway, body, gateway.prepared(body))
        stack.settle(admin, warm.request_id or "")
        for _ in range(sizes.repeats):
            timing = client.timed_stream(to_sim, direct, body, direct.prepared(body))
            direct_rates.append(timing.events / timing.total)
            idle.append(stack.admin("memory/reset")["rss_kib"])
            before = stack.admin("cpu")["cpu_seconds"]
            timing = client.timed_stream(to_gw, gateway, body, gateway.prepared(body))
            stack.settle(admin, timing.request_id or "")
            cpu.append((stack.admin("cpu")["cpu_seconds"] - before) / timing.events)
            peak.append(stack.admin("memory")["hwm_kib"])
            gateway_rates.append(timing.events / timing.total)
            events = timing.events
    return NetworkStream(
        events,
        median(direct_rates),
        median(gateway_rates),
        median(idle),
        median(peak),
        median(cpu),
    )


def in_process(sizes: Sizes) -> InProcessRelay:
    frames = payloads.chat_stream_events(sizes.stream_events)
    joined = b"".join(frames)
    bursts = [joined[i : i + BURST_CHUNK] for i in range(0, len(joined), BURST_CHUNK)]
    per_event = median([len(frames) / _relay(frames) for _ in range(sizes.repeats)])
    burst = median([len(frames) / _relay(bursts) for _ in range(sizes.repeats)])
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        _relay(frames)
        traced_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return InProcessRelay(len(frames), per_event, burst, traced_peak)


def _relay(chunks: list[bytes]) -> float:
    """Seconds to relay `chunks` to the end, as the gateway does for a chat stream whose
    client did not ask for usage (usage read, then its chunk stripped)."""
    finished: list[Observation] = []
    relay = Relay(
        iter(chunks), surface="chat_completions", strip_usage=True, on_finish=finished.append
    )
    start = time.perf_counter()
    for _chunk in relay:
        pass
    relay.close()
    elapsed = time.perf_counter() - start
    if not finished or finished[0].tokens is None or finished[0].outcome is not None:
        raise RuntimeError(f"the relay did not finish cleanly: {finished}")
    return elapsed
