"""`mantle-gateway`: parses the command line and hands off to one module per command group.

Each group imports its own dependencies inside its function so `--help` stays instant and the
Lambda bundle never pays for the CLI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mantle-gateway",
        description="OpenAI-compatible gateway in front of Amazon Bedrock Mantle.",
    )
    sub = parser.add_subparsers(dest="group", required=True)
    serve = sub.add_parser("serve", help="run the local door")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)
    serve.add_argument("--upstream", choices=["mantle", "simulator"], default="mantle")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    print(f"mantle-gateway: {args.group} is not implemented yet", file=sys.stderr)
    return 2
