"""One benchmark run: every measure in order, against one set of servers, into one table.

In-process measures run first, while no server exists to compete for the CPU; then the servers
start and the network measures run against them; the package is built and the cold imports
timed last, after the servers are gone. Progress goes to stderr so stdout is only the table.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench import coldstart, cpu, latency, package, report, roundtrips, stored, streaming
from bench.config import Sizes
from bench.stack import Stack
from bench.table import Table


def run(sizes: Sizes) -> Table:
    started = time.monotonic()

    def step(what: str) -> None:
        print(f"[bench {time.monotonic() - started:5.1f}s] {what}", file=sys.stderr, flush=True)

    step("gateway CPU per request, in process")
    core = cpu.measure(sizes)
    step("SSE relay, in process")
    relay = streaming.in_process(sizes)
    step("starting DynamoDB (moto), the Mantle simulator and the gateway")
    with Stack() as stack:
        step("DynamoDB round trips")
        rtt = {
            (probe, callers): latency.dynamodb_round_trip(
                stack,
                sizes,
                probe,
                callers=callers,
                pause=sizes.pause_seconds if (probe, callers) == ("admission", 1) else 0.0,
            )
            for probe in latency.PROBES
            for callers in (1, sizes.concurrency)
        }
        step("DynamoDB calls per request, counted")
        trips = roundtrips.measure(stack, sizes)
        step("added latency and time to first byte")
        lat = latency.measure(stack, sizes)
        step(f"{sizes.stream_events}-event stream through the gateway")
        stream = streaming.through_gateway(stack, sizes)
        step(f"latency after 0 and {sizes.stored_items:,} stored usage items")
        kept = stored.measure(stack, sizes)
    with tempfile.TemporaryDirectory(prefix="bench-package-") as workdir:
        step("deployment package and layer" + (" (layer only)" if not sizes.package else ""))
        packages = package.build(Path(workdir), with_dependencies=sizes.package)
        step("cold imports")
        cold = coldstart.measure(
            sizes.import_repeats, packages.function_dir, packages.runtime_python
        )
    step("done")
    measured = report.Measured(rtt, lat, core, trips, stream, relay, cold, packages, kept)
    return report.table(sizes, measured)
