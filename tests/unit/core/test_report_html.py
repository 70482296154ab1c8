"""The HTML report as a page: self-contained, escaped, accessible, and drawn from the same
aggregation as the other formats. What a browser draws: tests/integration/test_report_page.py."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from mantle_gateway.core import report, report_html
from tests.support.html_tree import Node, parse

HOSTILE = "<script>alert(1)</script>"


def _item(key_id: str, day: int, **fields: Any) -> dict[str, Any]:
    return {
        "key_id": key_id,
        "model": "openai.gpt-oss-120b",
        "timestamp": f"2030-02-{day:02d}T12:00:00.000000Z",
        "input_tokens": 1000,
        "output_tokens": 100,
        "cached_tokens": 0,
        "cost_usd": Decimal("1.005"),
        "status": "ok",
        "api_surface": "responses",
    } | fields


def _page(items: list[dict[str, Any]], **budgets: Decimal) -> tuple[str, Node]:
    reports = report.aggregate(items)
    for key_id, key in reports.items():
        key.name = {"key_x": HOSTILE}.get(key_id, key_id.upper())
        key.budget_usd = budgets.get(key_id)
    page = report_html.render(
        "2030-02", [reports[k] for k in sorted(reports)], generated_at="2030-03-01 08:00 UTC"
    )
    return page, parse(page)


@pytest.fixture
def month() -> tuple[str, Node]:
    return _page(
        [
            _item("key_near", 1),
            _item("key_near", 3, cost_usd=Decimal("7.5")),
            _item("key_x", 2, api_surface="messages", cache_write_tokens=50),
            _item("key_x", 2, api_surface="future_surface", model="acme.unpriced", cost_usd=0),
            _item("key_x", 28, status="incomplete", estimated=True),
        ],
        key_near=Decimal(10),
        key_x=Decimal(100),
    )


def test_a_hostile_key_name_is_text_not_markup(month: tuple[str, Node]) -> None:
    page, tree = month
    assert "<script" not in page.lower()
    assert tree.all("script") == []
    heading = tree.where("section", data_key_id="key_x")[0].all("h2")[0]
    assert heading.all_text.startswith(HOSTILE)


def test_the_page_needs_nothing_from_the_network(month: tuple[str, Node]) -> None:
    page, tree = month
    assert page.isascii()
    for pattern in (r"https?:", r"\bsrc=", r"\bhref=", r"<link", r"<img", r"url\(", r"@import"):
        assert not re.search(pattern, page, re.IGNORECASE), pattern
    policy = tree.where("meta", http_equiv="Content-Security-Policy")[0].attrs["content"]
    assert "default-src 'none'" in policy


def test_the_page_is_accessible_and_printable(month: tuple[str, Node]) -> None:
    page, tree = month
    assert tree.all("title")[0].all_text.startswith("Usage and spend, February 2030")
    assert tree.all("html")[0].attrs["lang"] == "en"
    assert all(th.attrs.get("scope") in ("col", "row") for th in tree.all("th"))
    assert all(t.all("caption") for t in tree.all("table"))
    svgs = tree.all("svg")
    assert svgs and all(s.attrs.get("role") == "img" and s.all("title") for s in svgs)
    assert "@media print" in page and "break-before:page" in page


def test_the_key_at_80_percent_is_highlighted_in_colour_and_words(
    month: tuple[str, Node],
) -> None:
    _, tree = month
    near = tree.where("section", data_key_id="key_near")[0]
    assert "near-budget" in near.attrs["class"].split()
    assert "85.1% of the monthly budget used" in near.where("p", class_="flag")[0].all_text
    row = tree.where("tr", data_key_id="key_near")[0]
    assert "near-budget" in row.attrs.get("class", "")
    assert "85.1% of budget used" in row.all_text
    assert "near-budget" not in tree.where("section", data_key_id="key_x")[0].attrs["class"]
    assert tree.where("rect", class_="near")


def test_surfaces_are_generic_and_cache_writes_shown_when_present(
    month: tuple[str, Node],
) -> None:
    _, tree = month
    surfaces = tree.where("section", data_key_id="key_x")[0].where("table", class_="by-surface")
    rows = {r.attrs["data-surface"]: r.all("th")[0].all_text for r in surfaces[0].all("tr")[1:]}
    assert rows == {
        "messages": "Messages (Anthropic)",
        "responses": "Responses (OpenAI)",
        "future_surface": "future_surface",
    }
    assert "Cache write" in [th.all_text for th in surfaces[0].all("th")]
    page, _ = _page([_item("key_a", 1)])
    assert "Cache write" not in page and "Cache-write" not in page


def test_daily_chart_has_a_point_per_day_and_dots_on_days_with_usage(
    month: tuple[str, Node],
) -> None:
    _, tree = month
    chart = tree.where("section", data_key_id="key_x")[0].where("svg", class_="chart")[0]
    points = chart.all("polyline")[0].attrs["points"].split()
    assert len(points) == 28  # February 2030
    dots = {d.attrs["data-day"]: d.attrs["data-usd"] for d in chart.all("circle")}
    assert dots == {"2030-02-02": "1.005", "2030-02-28": "1.005"}
    ys = [float(p.split(",")[1]) for p in points]
    assert ys[0] == max(ys) and ys[1] == min(ys)  # nothing on the 1st; the 2nd is the peak


def test_amounts_are_rounded_half_up_to_the_cent_with_the_exact_value_beside(
    month: tuple[str, Node],
) -> None:
    _, tree = month
    row = tree.where("tr", data_key_id="key_near")[0]
    spend = next(td for td in row.all("td") if "data-usd" in td.attrs)
    assert (spend.attrs["data-usd"], spend.all_text) == ("8.505", "$8.51")
    assert report_html.usd(Decimal("1234.565")) == "$1,234.57"
    assert report_html.usd(Decimal("-3.2")) == "-$3.20"
    assert report_html.usd(Decimal("0.004")) == "< $0.01"
    assert report_html.usd(Decimal(0)) == "$0.00"


def test_unbilled_and_estimated_items_are_called_out(month: tuple[str, Node]) -> None:
    _, tree = month
    section = tree.where("section", id="attention")[0]
    reasons = {r.attrs["data-reasons"] for r in section.all("tr") if "data-reasons" in r.attrs}
    assert reasons == {"estimated incomplete", "unbilled"}
    assert "no price for the model" in section.all_text


def test_a_key_without_usage_shows_its_budget_and_no_chart() -> None:
    # `usage report --key ID` for a key that was not used this month
    idle = report.KeyReport("key_idle", name="Idle", budget_usd=Decimal(5))
    tree = parse(report_html.render("2030-02", [idle], generated_at="now"))
    section = tree.where("section", data_key_id="key_idle")[0]
    assert "No usage this month." in section.all_text
    assert section.where("svg", class_="chart") == []
    assert section.where("svg", class_="bar")[0].attrs["data-used-pct"] == "0.0"


def test_an_empty_month_says_so() -> None:
    page = report_html.render("2030-02", [], generated_at="now")
    assert "No usage this month." in page
    assert "None this month" in page
