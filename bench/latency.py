"""Measures 1 and 3, the DynamoDB round trips their targets are built from, and where CPU goes.

Added latency is a difference of percentiles taken in the same repetition (gateway p50 minus
direct p50, gateway p99 minus direct p99), then the median over repetitions; the sides take
turns going first so slow drift favours neither. "Settled" runs wait, untimed, for the gateway
to finish each request's usage write before sending the next one on the same connection, and
at concurrency 1 start every request, direct or not, the same pause after the previous one
(`bench.load`; under concurrent load nothing idles, so those runs do not pause); the
back-to-back run does neither: the local door writes usage on a background writer, so a client
that does not pause should not wait for the previous request's write (issue 12).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from bench import client, load, payloads
from bench.config import Sizes
from bench.roundtrips import before_upstream_ms
from bench.stack import Stack
from bench.stats import median, percentile

if TYPE_CHECKING:
    from mantle_gateway.store.dynamo import Dynamo


@dataclass(frozen=True, slots=True)
class Added:
    """Seconds; each field the median over repetitions."""

    direct_p50: float
    gateway_p50: float
    added_p50: float
    direct_p99: float
    gateway_p99: float
    added_p99: float
    dynamodb_p50: float = 0.0
    """The gateway's wait on DynamoDB before its upstream call, p50 over the run's requests,
    timed inside the gateway process (bench.tap): "those round trips' measured latency"."""


@dataclass(frozen=True, slots=True)
class LatencyResult:
    c1: Added
    c1_back_to_back: Added
    floor_back_to_back: Added
    """The back-to-back run through `bench.floor`: what this machine adds before gateway code."""
    concurrent: Added
    concurrency: int
    ttfb: Added
    ttfb_messages: Added
    """The same first-byte measure on a streamed Anthropic Messages call."""
    stream_tail: Added
    """From the `data: [DONE]` chunk to the end of the body: what the client waits on after
    the last event (the gateway's usage write when it sits before the final chunk)."""
    guarded: Added = field(default_factory=lambda: Added(0, 0, 0, 0, 0, 0))
    """Non-streamed chat under a key-level guardrail (simulated ApplyGuardrail, fixed delay)."""
    guarded_ttfb: Added = field(default_factory=lambda: Added(0, 0, 0, 0, 0, 0))
    """First byte of a streamed chat under the same guardrail (one window checked first)."""
    cpu_per_request: dict[str, float] = field(default_factory=dict)
    """CPU seconds per gateway request of each process, during the back-to-back run."""


def measure(stack: Stack, sizes: Sizes) -> LatencyResult:
    body = payloads.chat_body(payloads.NON_STREAM_TOKENS, stream=False)
    stream_body = payloads.chat_body(payloads.NON_STREAM_TOKENS, stream=True)
    messages_body = payloads.messages_body(payloads.NON_STREAM_TOKENS)
    runs: dict[str, list[Added]] = {
        "c1": [],
        "b2b": [],
        "floor": [],
        "cn": [],
        "ttfb": [],
        "ttfb_messages": [],
        "tail": [],
        "guarded": [],
        "guarded_ttfb": [],
    }
    cpu: list[dict[str, float]] = []
    for rep in range(sizes.repeats):
        pair = _Pair(stack, first_direct=rep % 2 == 0, pause=sizes.pause_seconds)
        runs["c1"].append(pair.run(body, 1, sizes.requests_c1, client.timed_post))
        runs["b2b"].append(pair.run(body, 1, sizes.requests_c1, client.timed_post, settle=False))
        cpu.append(pair.gateway_cpu)
        runs["floor"].append(pair.floor(body, sizes.requests_c1))
        runs["cn"].append(
            pair.run(body, sizes.concurrency, sizes.requests_per_worker, client.timed_post)
        )
        runs["ttfb"].append(pair.run(stream_body, 1, sizes.ttfb_requests, client.first_byte))
        runs["ttfb_messages"].append(
            pair.run(messages_body, 1, sizes.ttfb_requests, client.first_byte, api="messages")
        )
        runs["tail"].append(pair.run(stream_body, 1, sizes.ttfb_requests, client.done_to_end))
        guarded = _Pair(
            stack,
            first_direct=rep % 2 == 0,
            pause=sizes.pause_seconds,
            guardrail=payloads.GUARDRAIL,
        )
        runs["guarded"].append(guarded.run(body, 1, sizes.requests_c1, client.timed_post))
        runs["guarded_ttfb"].append(
            guarded.run(stream_body, 1, sizes.ttfb_requests, client.first_byte)
        )
    return LatencyResult(
        c1=_median(runs["c1"]),
        c1_back_to_back=_median(runs["b2b"]),
        floor_back_to_back=_median(runs["floor"]),
        concurrent=_median(runs["cn"]),
        concurrency=sizes.concurrency,
        ttfb=_median(runs["ttfb"]),
        ttfb_messages=_median(runs["ttfb_messages"]),
        stream_tail=_median(runs["tail"]),
        guarded=_median(runs["guarded"]),
        guarded_ttfb=_median(runs["guarded_ttfb"]),
        cpu_per_request={k: median([c[k] for c in cpu]) for k in cpu[0]},
    )


@dataclass(slots=True)
class _Pair:
    """One direct run and one gateway run of the same load, the gateway on fresh tables."""

    stack: Stack
    first_direct: bool
    pause: float
    guardrail: str | None = None
    """A key-level guardrail for the gateway side's key."""
    gateway_cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds per request of each process during the last gateway run."""

    def run(
        self,
        body: bytes,
        workers: int,
        per_worker: int,
        timer: load.Timer,
        *,
        settle: bool = True,
        api: str = "chat",
    ) -> Added:
        direct = client.direct(self.stack.simulator_url, api)
        key = self.stack.fresh_key(self.guardrail)
        gateway = client.via_gateway(self.stack.gateway_url, key.secret, api)
        self.stack.admin("marks")  # from here on, only this run's gateway requests are marked
        order = (direct, gateway) if self.first_direct else (gateway, direct)
        samples: dict[bool, list[float]] = {}
        for target in order:
            before = self.stack.cpu_seconds()
            samples[target is direct] = load.run(
                target,
                body,
                workers=workers,
                per_worker=per_worker,
                timer=timer,
                settle=self.stack.settle if settle else None,
                pause=self.pause if settle and workers == 1 else 0.0,
            )
            if target is gateway:
                after, count = self.stack.cpu_seconds(), workers * (per_worker + load.WARMUP)
                self.gateway_cpu = {k: (after[k] - before[k]) / count for k in after}
        waits = before_upstream_ms(self.stack.admin("marks")["marks"])
        return _added(samples[True], samples[False], percentile(waits, 50) / 1000.0)

    def floor(self, body: bytes, requests: int) -> Added:
        """The back-to-back run once more, through the floor instead of the gateway."""
        direct = client.direct(self.stack.simulator_url)
        bare = client.Target(
            self.stack.floor_url + "/", {"content-type": "application/json"}, False
        )
        self.stack.floor_marks()  # from here on, only this run's
        order = (direct, bare) if self.first_direct else (bare, direct)
        samples = {
            target is direct: load.run(
                target, body, workers=1, per_worker=requests, timer=client.timed_post
            )
            for target in order
        }
        waits = before_upstream_ms(self.stack.floor_marks())
        return _added(samples[True], samples[False], percentile(waits, 50) / 1000.0)


def _added(direct: list[float], gateway: list[float], dynamodb_p50: float) -> Added:
    d50, d99 = percentile(direct, 50), percentile(direct, 99)
    g50, g99 = percentile(gateway, 50), percentile(gateway, 99)
    return Added(d50, g50, g50 - d50, d99, g99, g99 - d99, dynamodb_p50)


def _median(runs: list[Added]) -> Added:
    def pick(value: Callable[[Added], float]) -> float:
        return median([value(r) for r in runs])

    return Added(
        pick(lambda a: a.direct_p50),
        pick(lambda a: a.gateway_p50),
        pick(lambda a: a.added_p50),
        pick(lambda a: a.direct_p99),
        pick(lambda a: a.gateway_p99),
        pick(lambda a: a.added_p99),
        pick(lambda a: a.dynamodb_p50),
    )


PROBES = ("admission", "get")


def dynamodb_round_trip(
    stack: Stack, sizes: Sizes, probe: str, *, callers: int = 1, pause: float = 0.0
) -> float:
    """Median over repetitions of the p50 of one DynamoDB call, made through the gateway's own
    store code (`store.dynamo.Dynamo`) by `callers` threads at once (1: the unloaded round trip;
    the load test's concurrency: moto under load).

    `probe` "admission" is the very call the gateway makes before its upstream call: the
    conditional UpdateItem of `LimitsStore.admit` with a rate limit and a budget (limits never
    reached). "get" is a consistent GetItem of a key item, the cheapest call moto serves.
    `pause` idles each caller before each call, as the settled latency runs do."""
    from mantle_gateway.store.dynamo import Dynamo

    dynamo = Dynamo(region="us-east-1", endpoint_url=stack.dynamodb_url)
    once = _admission_probe(stack, dynamo) if probe == "admission" else _get_probe(stack, dynamo)
    per_caller = max(1, sizes.rtt_samples // callers)

    def repetition() -> float:
        samples: list[float] = []
        lock = threading.Lock()

        def call() -> None:
            for _ in range(3):
                once()
            mine = []
            for _ in range(per_caller):
                if pause:
                    time.sleep(pause)
                mine.append(once())
            with lock:
                samples.extend(mine)

        threads = [threading.Thread(target=call) for _ in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if len(samples) != per_caller * callers:
            raise RuntimeError("a DynamoDB round-trip caller failed")
        return percentile(samples, 50)

    return median([repetition() for _ in range(sizes.repeats)])


def _admission_probe(stack: Stack, dynamo: Dynamo) -> Callable[[], float]:
    from mantle_gateway.store.limits import Ask, LimitsStore

    limits = LimitsStore(dynamo, stack.settings.limits_table)
    key_id = stack.fresh_key().record.key_id
    endless, ample = 10**9, Decimal(10**6)

    def once() -> float:
        now = datetime.now(UTC)
        ask = Ask(key_id, now.strftime("%Y-%m"), now, endless, endless, ample, Decimal("1e-6"))
        start = time.perf_counter()
        verdict = limits.admit(ask)
        elapsed = time.perf_counter() - start
        if verdict.refused:
            raise RuntimeError("the probe's admission was refused")
        return elapsed

    return once


def _get_probe(stack: Stack, dynamo: Dynamo) -> Callable[[], float]:
    from mantle_gateway import schema

    key = stack.fresh_key()
    request = {
        "TableName": stack.settings.keys_table,
        "Key": {schema.KEYS_PK: {"S": key.record.digest}},
        "ConsistentRead": True,
    }

    def once() -> float:
        start = time.perf_counter()
        answer = dynamo.wire.get_item(**request)
        elapsed = time.perf_counter() - start
        if "Item" not in answer:
            raise RuntimeError("the bench key is missing from DynamoDB")
        return elapsed

    return once
