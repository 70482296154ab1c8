"""The finance report: per key, per month — requests, tokens, cost, budget, remaining — with a
breakdown by `api_surface` and model. Plain aggregation over usage items, no I/O.

Costs are summed as exact decimals, the same way DynamoDB adds them to the spend counter, so the
report's total for a key equals the counter to the last digit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

TOKEN_FIELDS = ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")
IMPLICIT_SURFACE = "other"
"""`api_surface` is sparse: an item without it was not written by the passthrough surfaces."""


@dataclass(slots=True)
class Totals:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal = Decimal(0)

    def add(self, item: Mapping[str, Any]) -> None:
        self.requests += 1
        self.input_tokens += int(item.get("input_tokens", 0))
        self.output_tokens += int(item.get("output_tokens", 0))
        self.cached_tokens += int(item.get("cached_tokens", 0))
        self.reasoning_tokens += int(item.get("reasoning_tokens", 0))
        self.cost_usd += Decimal(str(item.get("cost_usd", 0)))


@dataclass(slots=True)
class KeyReport:
    key_id: str
    name: str = ""
    budget_usd: Decimal | None = None
    spend_counter_usd: Decimal | None = None
    totals: Totals = field(default_factory=Totals)
    breakdown: dict[tuple[str, str], Totals] = field(default_factory=dict)

    @property
    def remaining_usd(self) -> Decimal | None:
        if self.budget_usd is None:
            return None
        spent = (
            self.spend_counter_usd if self.spend_counter_usd is not None else self.totals.cost_usd
        )
        return self.budget_usd - spent


def aggregate(items: Iterable[Mapping[str, Any]]) -> dict[str, KeyReport]:
    reports: dict[str, KeyReport] = {}
    for item in items:
        key_id = str(item["key_id"])
        report = reports.setdefault(key_id, KeyReport(key_id))
        report.totals.add(item)
        group = (str(item.get("api_surface", IMPLICIT_SURFACE)), str(item.get("model", "")))
        report.breakdown.setdefault(group, Totals()).add(item)
    return reports


def _totals_dict(totals: Totals) -> dict[str, Any]:
    return {
        "requests": totals.requests,
        **{name: getattr(totals, name) for name in TOKEN_FIELDS},
        "cost_usd": str(totals.cost_usd),
    }


def as_json(month: str, reports: Iterable[KeyReport]) -> dict[str, Any]:
    keys = []
    for report in reports:
        keys.append(
            {
                "key_id": report.key_id,
                "name": report.name,
                **_totals_dict(report.totals),
                "budget_usd": _text(report.budget_usd),
                "spend_counter_usd": _text(report.spend_counter_usd),
                "remaining_usd": _text(report.remaining_usd),
                "by_surface_and_model": [
                    {"api_surface": surface, "model": model, **_totals_dict(totals)}
                    for (surface, model), totals in sorted(report.breakdown.items())
                ],
            }
        )
    return {"month": month, "keys": keys}


CSV_COLUMNS = (
    "month",
    "key_id",
    "name",
    "api_surface",
    "model",
    "requests",
    *TOKEN_FIELDS,
    "cost_usd",
    "budget_usd",
    "remaining_usd",
)


def as_rows(month: str, reports: Iterable[KeyReport]) -> list[dict[str, Any]]:
    """One row per key, surface and model, then one `*`/`*` total row per key."""
    rows: list[dict[str, Any]] = []
    for report in reports:
        base = {"month": month, "key_id": report.key_id, "name": report.name}
        for (surface, model), totals in sorted(report.breakdown.items()):
            rows.append(
                base
                | {"api_surface": surface, "model": model}
                | _totals_dict(totals)
                | {"budget_usd": "", "remaining_usd": ""}
            )
        rows.append(
            base
            | {"api_surface": "*", "model": "*"}
            | _totals_dict(report.totals)
            | {
                "budget_usd": _text(report.budget_usd) or "",
                "remaining_usd": _text(report.remaining_usd) or "",
            }
        )
    return rows


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


# ---- grouped by Mantle project (`usage report --group-by project`)

NO_PROJECT = "none"
"""`project` is sparse: an item without it named no project upstream, which AWS bills to the
account's default project on the OpenAI APIs (Anthropic Messages takes no project)."""


@dataclass(slots=True)
class ProjectReport:
    """One Mantle project's month across every key that billed to it: what finance compares with
    the project's line in AWS Cost Explorer."""

    project: str
    totals: Totals = field(default_factory=Totals)
    breakdown: dict[tuple[str, str], Totals] = field(default_factory=dict)
    """(key_id, model) → totals."""

    @property
    def key_ids(self) -> list[str]:
        return sorted({key_id for key_id, _ in self.breakdown})


def aggregate_projects(items: Iterable[Mapping[str, Any]]) -> dict[str, ProjectReport]:
    reports: dict[str, ProjectReport] = {}
    for item in items:
        project = str(item.get("project", NO_PROJECT))
        report = reports.setdefault(project, ProjectReport(project))
        report.totals.add(item)
        group = (str(item["key_id"]), str(item.get("model", "")))
        report.breakdown.setdefault(group, Totals()).add(item)
    return reports


def projects_as_json(month: str, reports: Iterable[ProjectReport]) -> dict[str, Any]:
    reports = list(reports)
    total = Totals()
    for report in reports:
        total.requests += report.totals.requests
        for name in (*TOKEN_FIELDS, "cost_usd"):
            setattr(total, name, getattr(total, name) + getattr(report.totals, name))
    return {
        "month": month,
        "group_by": "project",
        "totals": _totals_dict(total),
        "projects": [
            {
                "project": report.project,
                **_totals_dict(report.totals),
                "key_ids": report.key_ids,
                "by_key_and_model": [
                    {"key_id": key_id, "model": model, **_totals_dict(totals)}
                    for (key_id, model), totals in sorted(report.breakdown.items())
                ],
            }
            for report in reports
        ],
    }


PROJECT_CSV_COLUMNS = ("month", "project", "key_id", "model", "requests", *TOKEN_FIELDS, "cost_usd")


def projects_as_rows(month: str, reports: Iterable[ProjectReport]) -> list[dict[str, Any]]:
    """One row per project, key and model, then one `*`/`*` total row per project."""
    rows: list[dict[str, Any]] = []
    for report in reports:
        base = {"month": month, "project": report.project}
        for (key_id, model), totals in sorted(report.breakdown.items()):
            rows.append(base | {"key_id": key_id, "model": model} | _totals_dict(totals))
        rows.append(base | {"key_id": "*", "model": "*"} | _totals_dict(report.totals))
    return rows
