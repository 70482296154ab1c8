"""`python -m bench`: parse the options, run, print the table (and a profile if asked)."""

from __future__ import annotations

import argparse
import sys

from bench import config, cpu
from bench.run import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure the gateway against the local Mantle simulator; print one table.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test's)")
    parser.add_argument("--repeats", type=int, help="repetitions per measure (median reported)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also print a cProfile of in-process Gateway.handle calls to stderr",
    )
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    sizes = config.sizes(quick=args.quick, repeats=args.repeats)
    print(run(sizes).render())
    if args.profile:
        print(cpu.profile(), file=sys.stderr)
    return 0
