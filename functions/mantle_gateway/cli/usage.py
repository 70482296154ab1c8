"""`mantle-gateway usage report|replay`: the finance view of a month, and the repair of the ledger.

`report` reads a month with Queries only (one key, or every key through the month index) and
prints per key requests, tokens (cached, cache-written and reasoning included), cost, budget and
what remains, broken down by `api_surface` and model, as a table, CSV, JSON or one
self-contained HTML page (with the spend per day and the items to look at twice);
`--group-by project` prints the same per Mantle project instead, across keys, broken down by key
and model.

`replay` reads log files (CloudWatch exports or plain JSON lines), finds every
`usage_write_failed` line and writes its usage item with the same transaction as the gateway.
The usage item's put is conditional, so replaying a file twice writes each item once. A line
that names the message but cannot be read is skipped and reported (`cli/failed_writes`); the
others are replayed all the same. Then it checks the budget alerts of every key and month it
wrote to (and of every `budget_alert_failed` line), with the gateway's own exactly-once claims:
a threshold announced before is not again.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mantle_gateway.errors import ConfigError
from mantle_gateway.settings import Settings

if TYPE_CHECKING:
    from mantle_gateway.core.alerts import BudgetAlerts


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
    if args.group_by == "project":
        return _project_report(args.format, month, items)
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


def _project_report(output: str, month: str, items: Iterable[dict[str, Any]]) -> int:
    """Spend per Mantle project across keys: the figure to set beside AWS Cost Explorer's."""
    from mantle_gateway.core import report

    if output not in ("table", "csv", "json"):
        raise ConfigError(f"--group-by project: prints table, csv or json, not {output}")
    projects = report.aggregate_projects(items)
    ordered = [projects[p] for p in sorted(projects)]
    if output == "json":
        print(json.dumps(report.projects_as_json(month, ordered), indent=2))
        return 0
    rows = report.projects_as_rows(month, ordered)
    if output == "csv":
        columns = report.PROJECT_CSV_COLUMNS
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        _columns(rows, report.PROJECT_CSV_COLUMNS[1:])
    return 0


def _table(rows: list[dict[str, Any]]) -> None:
    from mantle_gateway.core.report import CSV_COLUMNS

    _columns(rows, CSV_COLUMNS[1:])


def _columns(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def _log_records(paths: list[str], message: str) -> Iterator[dict[str, Any]]:
    """The JSON records whose `message` is `message`, in log files (JSON lines, or CloudWatch
    exports where each record follows a timestamp)."""
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
            if message not in line or "{" not in line:
                continue
            try:
                record = json.loads(line[line.index("{") :])
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("message") == message:
                yield record


def _replay(args: argparse.Namespace, settings: Settings, dynamo: Any) -> int:
    """Write every readable failed write; report each unreadable one on stderr and in the
    summary. Exit 1 when a write failed again, 3 when lines were skipped, else 0."""
    from collections import Counter

    from mantle_gateway.cli.failed_writes import BadLine, read
    from mantle_gateway.store.ledger import FAILED, Ledger

    ledger = Ledger(dynamo, usage_table=settings.usage_table, limits_table=settings.limits_table)
    outcomes: Counter[str] = Counter()
    spent = set(failed_alerts(args.files))
    skipped: list[BadLine] = []
    for found in read(args.files):
        if isinstance(found, BadLine):
            print(f"usage replay: skipped {found.where}: {found.reason}", file=sys.stderr)
            skipped.append(found)
            continue
        outcome = ledger.write_item(found.item, found.reservation)
        outcomes[outcome] += 1
        if outcome != FAILED:  # written now or before: its spend may have crossed a threshold
            spent.add((str(found.item["key_id"]), str(found.item["month"])))
    alerts = _budget_alerts(settings, dynamo)
    sent = sum(alerts.after_spend(key_id, month) for key_id, month in sorted(spent))
    summary: dict[str, Any] = {"found": sum(outcomes.values()), **outcomes}
    if sent:
        summary["budget_alerts"] = sent
    if skipped:
        summary |= {"skipped": len(skipped), "skipped_lines": [bad.where for bad in skipped]}
    print(json.dumps(summary))
    if outcomes[FAILED]:
        return 1
    return 3 if skipped else 0


def failed_alerts(paths: list[str]) -> Iterator[tuple[str, str]]:
    """(key id, month) of every `budget_alert_failed` log line: checked again on replay."""
    from mantle_gateway.core.alerts import FAILED_MESSAGE

    for record in _log_records(paths, FAILED_MESSAGE):
        if isinstance(record.get("key_id"), str) and isinstance(record.get("month"), str):
            yield record["key_id"], record["month"]


def _budget_alerts(settings: Settings, dynamo: Any) -> BudgetAlerts:
    """The same alerts as the gateway's (BUDGET_ALERT_EVENTS decides where they go: set it to
    `eventbridge`, and GATEWAY_STAGE, as the stage's function has them), finding keys by id."""
    from mantle_gateway import wiring
    from mantle_gateway.store.keys import KeyStore

    return wiring.budget_alerts(settings, dynamo, KeyStore(dynamo, settings.keys_table).get_by_id)
