"""`mantle-gateway`: parses the command line and hands off to one module per command group.

Each group imports its own dependencies inside its function so `--help` stays instant and the
Lambda bundle never pays for the CLI. Bad configuration ends the command with one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from mantle_gateway.errors import ConfigError

T = TypeVar("T", int, float)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mantle-gateway",
        description="OpenAI-compatible gateway in front of Amazon Bedrock Mantle.",
    )
    groups = parser.add_subparsers(dest="group", required=True)

    serve = groups.add_parser("serve", help="run the local door")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)
    serve.add_argument(
        "--upstream",
        choices=["mantle", "simulator"],
        default="mantle",
        help="simulator: answer with the built-in Mantle simulator (no AWS account needed)",
    )
    serve.add_argument(
        "--max-connections",
        type=_positive(int),
        default=256,
        help="open connections served at once; more wait until one ends (default 256)",
    )
    serve.add_argument(
        "--idle-timeout",
        type=_positive(float),
        default=30.0,
        help="seconds a keep-alive connection may wait for its next request (default 30)",
    )
    serve.add_argument(
        "--request-timeout",
        type=_positive(float),
        default=30.0,
        help="seconds a request may take to arrive, first byte to last (default 30; then 408)",
    )
    serve.add_argument(
        "--drain-timeout",
        type=_positive(float),
        default=10.0,
        help="on SIGTERM/Ctrl-C: seconds to finish answers in flight, then as many to write "
        "queued usage; what is left is logged for `usage replay` (default 10)",
    )
    kept = serve.add_mutually_exclusive_group()
    kept.add_argument(
        "--data-dir",
        default=".mantle-gateway",
        help="where the embedded DynamoDB's tables (keys, limits, usage) and the demo key are "
        "kept across restarts (default: .mantle-gateway in the working directory)",
    )
    kept.add_argument(
        "--ephemeral",
        action="store_true",
        help="keep nothing: fresh tables and a new demo key on every start",
    )

    tables = groups.add_parser("tables", help="DynamoDB tables for local and test use")
    tables_cmd = tables.add_subparsers(dest="command", required=True)
    create = tables_cmd.add_parser("create", help="create the tables (idempotent)")
    create.add_argument("--json", action="store_true")

    keys = groups.add_parser("keys", help="gateway API keys")
    keys_cmd = keys.add_subparsers(dest="command", required=True)
    key_create = keys_cmd.add_parser("create", help="create a key; prints the secret once")
    key_create.add_argument("--name", required=True)
    _key_options(key_create)
    keys_cmd.add_parser("list", help="list keys").add_argument("--json", action="store_true")
    show = keys_cmd.add_parser("show", help="show one key")
    show.add_argument("key_id")
    show.add_argument("--json", action="store_true")
    revoke = keys_cmd.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id")
    revoke.add_argument("--json", action="store_true")
    update = keys_cmd.add_parser("update", help="change a key's limits")
    update.add_argument("key_id")
    update.add_argument("--name")
    _key_options(update)
    usage = groups.add_parser("usage", help="the usage ledger")
    usage_cmd = usage.add_subparsers(dest="command", required=True)
    report = usage_cmd.add_parser("report", help="per-key usage and cost for a month")
    report.add_argument("--month", required=True, help="YYYY-MM (UTC)")
    report.add_argument("--key", help="one key id")
    report.add_argument("--format", choices=["table", "csv", "json", "html"], default="table")
    report.add_argument(
        "--group-by",
        choices=["key", "project"],
        default="key",
        help="project: spend per Mantle project across keys (table, csv, json)",
    )
    replay = usage_cmd.add_parser(
        "replay",
        help="write usage items from usage_write_failed logs",
        description="Writes the usage item of every usage_write_failed log line (idempotent). "
        "Lines that name it but cannot be read are skipped and listed (stderr and the JSON "
        "summary's skipped_lines). Exit status: 0 all replayed, 1 a write failed again, "
        "3 lines were skipped.",
    )
    replay.add_argument("files", nargs="+", help="log files (JSON lines or CloudWatch exports)")
    return parser


def _positive(kind: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type: a positive number of `kind`, below a million (so finite)."""

    def parse(text: str) -> T:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not 0 < value < 1_000_000:
            raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1,000,000")
        return value

    return parse


def _key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--owner")
    parser.add_argument("--monthly-budget-usd", dest="budget")
    parser.add_argument("--rpm", type=int, help="requests per minute")
    parser.add_argument("--tpm", type=int, help="tokens per minute")
    parser.add_argument("--models", help="comma-separated model globs, e.g. 'openai.gpt-oss-*'")
    parser.add_argument("--expires", help="YYYY-MM-DD (UTC); the key stops working that day")
    parser.add_argument(
        "--project",
        help="Mantle project (proj_… or default) named on every upstream request; none: unbind",
    )
    parser.add_argument(
        "--alert-at",
        help="budget alert thresholds, percent of the monthly budget (e.g. 50,80,100); "
        "none: no alerts; default: the stage's",
    )
    parser.add_argument("--json", action="store_true")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.group == "serve":
            from mantle_gateway.cli import serve

            return serve.run(args)
        if args.group == "tables":
            from mantle_gateway.cli import tables

            return tables.run(args)
        if args.group == "keys":
            from mantle_gateway.cli import keys

            return keys.run(args)
        if args.group == "usage":
            from mantle_gateway.cli import usage

            return usage.run(args)
    except ConfigError as exc:
        print(f"mantle-gateway: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2
