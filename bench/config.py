"""How big each measure is: the default run (about two minutes on 2 cores) and `--quick`.

Three repetitions with more samples each, rather than five with fewer: a p99 needs samples.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Sizes:
    repeats: int = 3
    """Repetitions of every timed measure; the table reports their median."""
    requests_c1: int = 200
    """Sequential requests per side (direct, gateway) and repetition at concurrency 1."""
    concurrency: int = 16
    requests_per_worker: int = 12
    """Requests per worker thread and repetition at `concurrency` (moto makes these slow)."""
    ttfb_requests: int = 100
    pause_seconds: float = 0.03
    """Idle time before each request of a settled run, the same on both sides (bench.load);
    longer than the gateway's usage write, which it includes."""
    stream_events: int = 10_000
    rtt_samples: int = 300
    """DynamoDB GetItem calls per repetition for the round-trip latency."""
    cpu_requests: int = 2_000
    """In-process `Gateway.handle` calls per repetition (fake stores, mock upstream)."""
    count_requests: int = 20
    """Warm requests whose DynamoDB calls are counted (per kind: non-streamed, streamed)."""
    stored_items: int = 10_000
    """Usage items stored before the second half of the stored-items latency row."""
    stored_requests: int = 100
    """Timed requests per half of that row and repetition."""
    import_repeats: int = 3
    package: bool = True
    """Build the Lambda bundle with pip (needs the package index); --quick skips it."""
    quick: bool = False


DEFAULT = Sizes()

QUICK = Sizes(
    repeats=1,
    requests_c1=20,
    concurrency=4,
    requests_per_worker=5,
    ttfb_requests=10,
    pause_seconds=0.005,
    stream_events=300,
    rtt_samples=20,
    cpu_requests=100,
    count_requests=3,
    stored_items=300,
    stored_requests=10,
    import_repeats=1,
    package=False,
    quick=True,
)


def sizes(*, quick: bool, repeats: int | None) -> Sizes:
    chosen = QUICK if quick else DEFAULT
    return replace(chosen, repeats=repeats, import_repeats=repeats) if repeats else chosen
