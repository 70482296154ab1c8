"""The HTML report as a page: self-contained, escaped, accessible, and drawn from the same
aggregation as the other formats. What a browser draws: tests/integration/test_report_page.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest

from mantle_gateway.core import report, report_html

HOSTILE = "<script>alert(1)</script>"
_VOID = {"meta", "link", "br", "img", "input", "hr", "rect", "line", "circle", "polyline"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: str = ""

    def all(self, tag: str) -> list[Node]:
        found = [self] if self.tag == tag else []
        for child in self.children:
            found += child.all(tag)
        return found

    def where(self, tag: str, **attrs: str) -> list[Node]:
        return [
            n
            for n in self.all(tag)
            if all(attr_has(n, k.replace("_", "-"), v) for k, v in attrs.items())
        ]

    @property
    def all_text(self) -> str:
        return self.text + "".join(c.all_text for c in self.children)


def attr_has(node: Node, name: str, value: str) -> bool:
    if name == "class":
        return value in node.attrs.get("class", "").split()
    return node.attrs.get(name) == value


class TreeBuilder(HTMLParser):
    """Enough of a DOM for these checks; self-closing SVG shapes and HTML void tags close."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        while self.stack[-1].tag != tag:
            self.stack.pop()
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(Node("#text", {}, text=data))


def parse(page: str) -> Node:
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    return builder.root


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
    assert "85.1% of the monthly budget used" in near.where("p", **{"class": "flag"})[0].all_text
    row = tree.where("tr", data_key_id="key_near")[0]
    assert "near-budget" in row.attrs.get("class", "")
    assert "85.1% of budget used" in row.all_text
    assert "near-budget" not in tree.where("section", data_key_id="key_x")[0].attrs["class"]
    assert tree.where("rect", **{"class": "near"})


def test_surfaces_are_generic_and_cache_writes_shown_when_present(
    month: tuple[str, Node],
) -> None:
    _, tree = month
    surfaces = tree.where("section", data_key_id="key_x")[0].where(
        "table", **{"class": "by-surface"}
    )
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
    chart = tree.where("section", data_key_id="key_x")[0].where("svg", **{"class": "chart"})[0]
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


def test_an_empty_month_says_so() -> None:
    page = report_html.render("2030-02", [], generated_at="now")
    assert "No usage this month." in page
    assert "None this month" in page
