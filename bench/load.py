"""Closed-loop load: N worker threads, each with its own keep-alive client, each sending its
requests one after another after a warm-up, all starting together at a barrier.

`settle` (optional) is called untimed after each gateway request with its request id; the
bench passes one that waits until the gateway has closed that request and written its usage,
so the next request on the same connection is timed alone (see `bench.tap`).

`pause` (optional) spaces a worker's requests: each starts that long after the previous one
ended (the settle wait included in it). Both sides of a comparison get the same pause, so
both reach a server that has been idle as long: on a VM an idle pause alone slows the next
request down (measured here: direct p50 0.65 ms back to back, 1.2 ms after a 5 ms pause), and
without a pause for the direct side the gateway side, spaced by its usage writes, pays that
while the direct side does not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from bench import client
from bench.client import Sample, Target

WARMUP = 3
"""Untimed requests per worker first: connections opened, key cache and pools warm."""

Timer = Callable[[httpx.Client, Target, bytes, dict[str, str]], Sample]
Settle = Callable[[httpx.Client, str], None]


def run(
    target: Target,
    body: bytes,
    *,
    workers: int,
    per_worker: int,
    timer: Timer,
    settle: Settle | None = None,
    pause: float = 0.0,
) -> list[float]:
    """Every timed request's seconds, all workers together."""
    barrier = threading.Barrier(workers)
    results: list[list[float]] = [[] for _ in range(workers)]
    errors: list[BaseException] = []

    def one(http: httpx.Client, admin: httpx.Client, headers: dict[str, str]) -> float:
        sample = timer(http, target, body, headers)
        ended = time.perf_counter()
        if settle is not None and sample.request_id:
            settle(admin, sample.request_id)
        rest = pause - (time.perf_counter() - ended)
        if rest > 0:
            time.sleep(rest)
        return sample.seconds

    def work(index: int) -> None:
        try:
            with client.new_client() as http, client.new_client() as admin:
                # Signatures are made before the barrier: the clock never includes them.
                headers = [target.prepared(body) for _ in range(WARMUP + per_worker)]
                for prepared in headers[:WARMUP]:
                    one(http, admin, prepared)
                barrier.wait()
                results[index] = [one(http, admin, h) for h in headers[WARMUP:]]
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"load run failed: {errors[0]!r}") from errors[0]
    return [seconds for worker in results for seconds in worker]
