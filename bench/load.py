"""Closed-loop load: N worker threads, each with its own keep-alive client, each sending its
requests one after another after a warm-up, all starting together at a barrier.

`settle` (optional) is called untimed after each gateway request with its request id; the
bench passes one that waits until the gateway has closed that request and written its usage,
so the next request on the same connection is timed alone (see `bench.tap`).
"""

from __future__ import annotations

import threading
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
) -> list[float]:
    """Every timed request's seconds, all workers together."""
    barrier = threading.Barrier(workers)
    results: list[list[float]] = [[] for _ in range(workers)]
    errors: list[BaseException] = []

    def one(http: httpx.Client, admin: httpx.Client, headers: dict[str, str]) -> float:
        sample = timer(http, target, body, headers)
        if settle is not None and sample.request_id:
            settle(admin, sample.request_id)
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
