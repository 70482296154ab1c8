"""`usage report --group-by project`: spend per Mantle project across keys, to the last digit."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mantle_gateway.core.report import (
    NO_PROJECT,
    PROJECT_CSV_COLUMNS,
    aggregate_projects,
    projects_as_json,
    projects_as_rows,
)


def item(key_id: str, cost: str, project: str | None = None, model: str = "m") -> dict[str, Any]:
    out: dict[str, Any] = {
        "key_id": key_id,
        "model": model,
        "input_tokens": 10,
        "output_tokens": 5,
        "cached_tokens": 0,
        "cost_usd": Decimal(cost),
    }
    if project:
        out["project"] = project
    return out


ITEMS = [
    item("key_a", "0.1", "proj_x"),
    item("key_b", "0.2", "proj_x", model="n"),
    item("key_b", "0.0000003", "proj_x", model="n"),
    item("key_a", "0.4"),
]


def test_items_group_by_the_project_they_named_with_a_bucket_for_none() -> None:
    reports = aggregate_projects(ITEMS)

    assert set(reports) == {"proj_x", NO_PROJECT}
    x = reports["proj_x"]
    assert x.totals.cost_usd == Decimal("0.3000003")
    assert x.totals.requests == 3
    assert x.key_ids == ["key_a", "key_b"]
    assert x.breakdown[("key_b", "n")].requests == 2
    assert reports[NO_PROJECT].key_ids == ["key_a"]


def test_json_and_rows_agree_on_every_digit() -> None:
    reports = aggregate_projects(ITEMS)
    ordered = [reports[p] for p in sorted(reports)]

    data = projects_as_json("2026-11", ordered)
    rows = projects_as_rows("2026-11", ordered)

    assert data["group_by"] == "project"
    assert data["totals"]["cost_usd"] == "0.7000003"
    assert data["totals"]["requests"] == 4
    assert [p["project"] for p in data["projects"]] == ["none", "proj_x"]
    totals = {r["project"]: r["cost_usd"] for r in rows if r["key_id"] == "*"}
    assert totals == {p["project"]: p["cost_usd"] for p in data["projects"]}
    assert all(set(r) == set(PROJECT_CSV_COLUMNS) for r in rows)
    assert len(rows) == 2 + 3  # none: 1 group, proj_x: 2 groups, plus one total row each
