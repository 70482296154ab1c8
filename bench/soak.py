"""`python -m bench.soak [--requests N]`: does the embedded default stay as fast as it starts?

Sends N non-streamed chat requests back to back on one keep-alive connection with one key (a
monthly budget and an rpm limit set, so every request takes the reservation path and writes a
usage item), through the bench's three processes (embedded DynamoDB, simulator, local door).
Prints the p50 of each block of 1,000 requests, the ratio of the last block's p50 to the
first's (issue 12 asks for at most 1.5 times over 20,000 requests), and per block each server
process's CPU time per request (which, unlike latency on a shared machine, does not depend on
what else runs), its resident memory and the load average. A script, not a test: timing belongs
here, not in `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import dataclass

from bench import client, payloads, procs
from bench.stack import Stack
from bench.stats import ms, percentile

BLOCK = 1_000
RATIO_TARGET = 1.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--block", type=int, default=BLOCK, help="requests per reported p50")
    args = parser.parse_args(argv)
    if args.requests < 2 * args.block:
        parser.error("--requests must be at least two blocks")
    # Stopped with SIGTERM, stop the three servers on the way out, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    blocks = _run(args.requests, args.block)
    first, last = blocks[0], blocks[-1]
    ratio = last.p50 / first.p50
    print(
        json.dumps(
            {
                "requests": args.requests,
                "first_block_p50_ms": round(ms(first.p50), 3),
                "last_block_p50_ms": round(ms(last.p50), 3),
                "ratio": round(ratio, 3),
                "target": f"<= {RATIO_TARGET}",
                "verdict": "pass" if ratio <= RATIO_TARGET else "fail",
                "cpu_ms_per_request_first_and_last_block": {
                    role: [round(ms(b.cpu[role]), 3) for b in (first, last)] for role in first.cpu
                },
                "rss_mib_first_and_last_block": {
                    role: [round(b.rss_kib[role] / 1024, 1) for b in (first, last)]
                    for role in first.rss_kib
                },
                "load_average_first_and_last_block": [first.load, last.load],
            }
        )
    )
    return 0 if ratio <= RATIO_TARGET else 1


@dataclass(frozen=True, slots=True)
class Block:
    p50: float
    p99: float
    cpu: dict[str, float]
    """CPU seconds per request of each server process during the block: unlike latency, this
    does not depend on what else the machine runs."""
    rss_kib: dict[str, int]
    load: float
    """The 1-minute load average at the block's end."""


def _run(requests: int, size: int) -> list[Block]:
    body = payloads.chat_body(payloads.NON_STREAM_TOKENS, stream=False)
    blocks: list[Block] = []
    with Stack() as stack, client.new_client() as http:
        target = client.via_gateway(stack.gateway_url, stack.fresh_key().secret)
        headers = target.prepared(body)
        started = time.monotonic()
        for number in range(requests // size):
            cpu_before = {role: procs.cpu_seconds(pid) for role, pid in stack.pids.items()}
            seconds = [client.timed_post(http, target, body, headers).seconds for _ in range(size)]
            block = Block(
                percentile(seconds, 50),
                percentile(seconds, 99),
                {
                    role: (procs.cpu_seconds(pid) - cpu_before[role]) / size
                    for role, pid in stack.pids.items()
                },
                {role: procs.rss_kib(pid) for role, pid in stack.pids.items()},
                round(os.getloadavg()[0], 1),
            )
            blocks.append(block)
            print(
                f"[soak {time.monotonic() - started:6.0f}s] requests {number * size + 1}-"
                f"{(number + 1) * size}: p50 {ms(block.p50):.2f} ms, p99 {ms(block.p99):.2f} ms; "
                "CPU ms/request "
                + ", ".join(f"{role} {ms(cpu):.2f}" for role, cpu in block.cpu.items())
                + f"; load {block.load}",
                file=sys.stderr,
                flush=True,
            )
    return blocks


if __name__ == "__main__":
    raise SystemExit(main())
