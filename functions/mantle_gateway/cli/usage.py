"""`mantle-gateway usage report|replay`: the finance view of a month, and the repair of the ledger.

`report` reads a month with Queries only (one key, or every key through the month index) and
prints per key requests, tokens (cached, cache-written and reasoning included), cost, budget and
what remains, broken down by `api_surface` and model, as a table, CSV, JSON or one
self-contained HTML page (with the spend per day and the items to look at twice).

`replay` reads log files (CloudWatch exports or plain JSON lines), finds every
`usage_write_failed` line and writes its usage item with the same transaction as the gateway.
The usage item's put is conditional, so replaying a file twice writes each item once. A line
that names the message but cannot be read is skipped and reported (`cli/failed_writes`); the
others are replayed all the same.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from typing import TYPE_CHECKING, Any

from mantle_gateway.errors import ConfigError
from mantle_gateway.settings import Settings

if TYPE_CHECKING:
    pass


def run(args: argparse.Namespace) -> int:
    from mantle_gateway.store.dynamo import Dynamo

    settings = Settings.load()
    dynamo = Dynamo(region=settings.region, endpoint_url=settings.dynamodb_endpoint_url)
    if args.command == "report":
        return _report(args, settings, dynamo)
    return _replay(args, settings, dynamo)


def _report(args: argparse.Namespace, settings: Settings, dynamo: Any) -> int:
    from mantle_gateway.core import report
    from mantle_gateway.store.keys import KeyStore
    from mantle_gateway.store.limits import LimitsStore
    from mantle_gateway.store.usage import UsageReader

    month = args.month
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ConfigError(f"--month: {month!r} is not YYYY-MM")
    items = UsageReader(dynamo, settings.usage_table).month(month, args.key)
    reports = report.aggregate(items)
    keys = KeyStore(dynamo, settings.keys_table)
    limits = LimitsStore(dynamo, settings.limits_table)
    if args.key and args.key not in reports:
        reports[args.key] = report.KeyReport(args.key)
    for key_id, key_report in reports.items():
        record = keys.get_by_id(key_id)
        if record is not None:
            key_report.name = record.name
            key_report.budget_usd = record.monthly_budget_usd
        key_report.spend_counter_usd = limits.spend(key_id, month)["spent_usd"]
    ordered = [reports[k] for k in sorted(reports)]
    if args.format == "json":
        print(json.dumps(report.as_json(month, ordered), indent=2))
    elif args.format == "html":
        from datetime import UTC, datetime

        from mantle_gateway.core import report_html

        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        sys.stdout.write(report_html.render(month, ordered, generated_at=now))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=report.CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(report.as_rows(month, ordered))
    else:
        _table(report.as_rows(month, ordered))
    return 0


def _table(rows: list[dict[str, Any]]) -> None:
    from mantle_gateway.core.report import CSV_COLUMNS

    columns = CSV_COLUMNS[1:]
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def _replay(args: argparse.Namespace, settings: Settings, dynamo: Any) -> int:
    """Write every readable failed write; report each unreadable one on stderr and in the
    summary. Exit 1 when a write failed again, 3 when lines were skipped, else 0."""
    from collections import Counter

    from mantle_gateway.cli.failed_writes import BadLine, read
    from mantle_gateway.store.ledger import FAILED, Ledger

    ledger = Ledger(dynamo, usage_table=settings.usage_table, limits_table=settings.limits_table)
    outcomes: Counter[str] = Counter()
    skipped: list[BadLine] = []
    for found in read(args.files):
        if isinstance(found, BadLine):
            print(f"usage replay: skipped {found.where}: {found.reason}", file=sys.stderr)
            skipped.append(found)
        else:
            outcomes[ledger.write_item(found.item, found.reservation)] += 1
    summary: dict[str, Any] = {"found": sum(outcomes.values()), **outcomes}
    if skipped:
        summary |= {"skipped": len(skipped), "skipped_lines": [bad.where for bad in skipped]}
    print(json.dumps(summary))
    if outcomes[FAILED]:
        return 1
    return 3 if skipped else 0
