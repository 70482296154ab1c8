"""`python -m bench.soak [--requests N]`: does the embedded default stay as fast as it starts?

Sends N non-streamed chat requests back to back on one keep-alive connection with one key (a
monthly budget and an rpm limit set, so every request takes the reservation path and writes a
usage item), through the bench's three processes (embedded DynamoDB, simulator, local door).
Prints the p50 of each block of 1,000 requests, the ratio of the last block's p50 to the
first's (issue 12 asks for at most 1.5 times over 20,000 requests), and each server process's
resident memory after the first block and at the end. A script, not a test: timing belongs
here, not in `make test`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

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
    body = payloads.chat_body(payloads.NON_STREAM_TOKENS, stream=False)
    with Stack() as stack:
        target = client.via_gateway(stack.gateway_url, stack.fresh_key().secret)
        headers = target.prepared(body)
        seconds: list[float] = []
        memory: dict[str, list[int]] = {role: [] for role in stack.pids}
        started = time.monotonic()
        with client.new_client() as http:
            for sent in range(1, args.requests + 1):
                seconds.append(client.timed_post(http, target, body, headers).seconds)
                if sent in (args.block, args.requests):
                    for role, pid in stack.pids.items():
                        memory[role].append(procs.rss_kib(pid))
                if sent % args.block == 0:
                    block = seconds[-args.block :]
                    print(
                        f"[soak {time.monotonic() - started:6.0f}s] requests "
                        f"{sent - args.block + 1}-{sent}: p50 {ms(percentile(block, 50)):.2f} ms, "
                        f"p99 {ms(percentile(block, 99)):.2f} ms",
                        file=sys.stderr,
                        flush=True,
                    )
    first = percentile(seconds[: args.block], 50)
    last = percentile(seconds[-args.block :], 50)
    ratio = last / first
    print(
        json.dumps(
            {
                "requests": args.requests,
                "first_block_p50_ms": round(ms(first), 3),
                "last_block_p50_ms": round(ms(last), 3),
                "ratio": round(ratio, 3),
                "rss_mib_after_first_block_and_at_end": {
                    role: [round(kib / 1024, 1) for kib in values]
                    for role, values in memory.items()
                },
                "target": f"<= {RATIO_TARGET}",
                "verdict": "pass" if ratio <= RATIO_TARGET else "fail",
            }
        )
    )
    return 0 if ratio <= RATIO_TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
