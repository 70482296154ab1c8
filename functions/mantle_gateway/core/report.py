"""The finance report: per key, per month — requests, tokens, cost, budget, remaining — with a
breakdown by `api_surface` (chat_completions, responses, messages) and model, by UTC day, and
the items finance should look at twice. Plain aggregation over usage items, no I/O; every format
(table, CSV, JSON, HTML) renders it. Tokens written to a prompt cache (Anthropic Messages) get
their own column, since they are priced apart; like cached and reasoning tokens they are a part
of the input (or output) column, not added to it.

Costs are summed as exact decimals, the same way DynamoDB adds them to the spend counter, so the
report's total for a key equals the counter to the last digit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
)
"""`reasoning_tokens` and `cache_write_tokens` are sparse on the item: absent counts as 0."""
IMPLICIT_SURFACE = "other"
"""`api_surface` is sparse: an item without it was not written by the passthrough surfaces."""
NEAR_BUDGET_PCT = Decimal(80)
"""A key that has used this share of its monthly budget or more is called out."""

ATTENTION: Mapping[str, str] = {
    "estimated": "The upstream never reported usage (the answer was cut short), so the gateway "
    "counted the tokens it sent and received and priced those. AWS bills its own count, which "
    "may differ.",
    "incomplete": "The answer did not finish (client disconnected, upstream dropped, deadline). "
    "The key is charged for what was used.",
    "unbilled": "Tokens were used but cost $0 here because the gateway has no price for the "
    "model (allowed only for keys without a budget). AWS still bills them: add the model's "
    "price with PRICES_JSON.",
}
"""Why an item needs a second look, in the words the HTML page shows. An item may have several."""


@dataclass(slots=True)
class Totals:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal = Decimal(0)

    def add(self, item: Mapping[str, Any]) -> None:
        self.requests += 1
        for name in TOKEN_FIELDS:
            setattr(self, name, getattr(self, name) + int(item.get(name, 0)))
        self.cost_usd += Decimal(str(item.get("cost_usd", 0)))

    def merge(self, other: Totals) -> None:
        self.requests += other.requests
        for name in TOKEN_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cost_usd += other.cost_usd


@dataclass(slots=True)
class KeyReport:
    key_id: str
    name: str = ""
    budget_usd: Decimal | None = None
    spend_counter_usd: Decimal | None = None
    totals: Totals = field(default_factory=Totals)
    breakdown: dict[tuple[str, str], Totals] = field(default_factory=dict)
    """(api_surface, model) → totals."""
    by_day: dict[str, Totals] = field(default_factory=dict)
    """UTC day `YYYY-MM-DD` (from the item's timestamp) → totals; days without usage absent."""
    attention: dict[tuple[tuple[str, ...], str], Totals] = field(default_factory=dict)
    """(reasons from ATTENTION, model) → totals of the items with exactly those reasons; an item
    is counted once (an estimated item is usually incomplete too)."""

    @property
    def spent_usd(self) -> Decimal:
        """The spend counter when read, else the items' sum (the ledger keeps them equal)."""
        counter = self.spend_counter_usd
        return counter if counter is not None else self.totals.cost_usd

    @property
    def remaining_usd(self) -> Decimal | None:
        if self.budget_usd is None:
            return None
        return self.budget_usd - self.spent_usd

    @property
    def budget_used_pct(self) -> Decimal | None:
        """Percent of the budget spent; None without a budget (or with a zero one)."""
        if not self.budget_usd:
            return None
        return self.spent_usd * 100 / self.budget_usd

    @property
    def near_budget(self) -> bool:
        used = self.budget_used_pct
        return used is not None and used >= NEAR_BUDGET_PCT

    @property
    def by_model(self) -> dict[str, Totals]:
        return _regroup(self.breakdown, 1)

    @property
    def by_surface(self) -> dict[str, Totals]:
        return _regroup(self.breakdown, 0)


def aggregate(items: Iterable[Mapping[str, Any]]) -> dict[str, KeyReport]:
    reports: dict[str, KeyReport] = {}
    for item in items:
        key_id = str(item["key_id"])
        report = reports.setdefault(key_id, KeyReport(key_id))
        report.totals.add(item)
        group = (str(item.get("api_surface", IMPLICIT_SURFACE)), str(item.get("model", "")))
        report.breakdown.setdefault(group, Totals()).add(item)
        report.by_day.setdefault(str(item["timestamp"])[:10], Totals()).add(item)
        reasons = attention_reasons(item)
        if reasons:
            report.attention.setdefault((reasons, group[1]), Totals()).add(item)
    return reports


def attention_reasons(item: Mapping[str, Any]) -> tuple[str, ...]:
    """Which ATTENTION reasons apply to one usage item, in ATTENTION's order."""
    reasons: list[str] = []
    if item.get("estimated") is True:
        reasons.append("estimated")
    if item.get("status") == "incomplete":
        reasons.append("incomplete")
    used = int(item.get("input_tokens", 0)) + int(item.get("output_tokens", 0))
    if used > 0 and Decimal(str(item.get("cost_usd", 0))) == 0:
        reasons.append("unbilled")
    return tuple(reasons)


def month_totals(reports: Iterable[KeyReport]) -> Totals:
    total = Totals()
    for report in reports:
        total.merge(report.totals)
    return total


def _regroup(breakdown: Mapping[tuple[str, str], Totals], part: int) -> dict[str, Totals]:
    groups: dict[str, Totals] = {}
    for names, totals in sorted(breakdown.items()):
        groups.setdefault(names[part], Totals()).merge(totals)
    return groups


def _totals_dict(totals: Totals) -> dict[str, Any]:
    return {
        "requests": totals.requests,
        **{name: getattr(totals, name) for name in TOKEN_FIELDS},
        "cost_usd": str(totals.cost_usd),
    }


def as_json(month: str, reports: Iterable[KeyReport]) -> dict[str, Any]:
    keys = []
    reports = list(reports)
    for report in reports:
        used = report.budget_used_pct
        keys.append(
            {
                "key_id": report.key_id,
                "name": report.name,
                **_totals_dict(report.totals),
                "budget_usd": _text(report.budget_usd),
                "spend_counter_usd": _text(report.spend_counter_usd),
                "remaining_usd": _text(report.remaining_usd),
                "budget_used_pct": None if used is None else str(percent(used)),
                "near_budget": report.near_budget,
                "by_surface_and_model": [
                    {"api_surface": surface, "model": model, **_totals_dict(totals)}
                    for (surface, model), totals in sorted(report.breakdown.items())
                ],
                "by_day": [
                    {"day": day, **_totals_dict(totals)}
                    for day, totals in sorted(report.by_day.items())
                ],
                "attention": [
                    {"reasons": list(reasons), "model": model, **_totals_dict(totals)}
                    for (reasons, model), totals in sorted(report.attention.items())
                ],
            }
        )
    return {
        "month": month,
        "near_budget_pct": str(NEAR_BUDGET_PCT),
        "totals": _totals_dict(month_totals(reports)),
        "keys": keys,
    }


def percent(value: Decimal) -> Decimal:
    """A percentage as reports show it: one decimal, half up."""
    return value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


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
