"""The finance report as one self-contained HTML page: what `usage report --format html` prints.

Finance opens it in a browser, forwards it by e-mail or prints it, so the page needs nothing
else: inline CSS, inline SVG charts, no script, no font, image or link to fetch (its Content
Security Policy forbids all of them), and ASCII only, so no stdout encoding can mangle it. It
renders the same `core.report` aggregation as the JSON, CSV and table formats: amounts are those
exact decimals rounded half-up to the cent for display, and each amount cell carries the exact
value in `data-usd`. Every name, model and surface is escaped: key names are user input.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from html import escape

from mantle_gateway.core.report import (
    ATTENTION,
    NEAR_BUDGET_PCT,
    KeyReport,
    Totals,
    month_totals,
    percent,
)

CENT = Decimal("0.01")
SURFACE_LABELS: Mapping[str, str] = {
    "chat_completions": "Chat Completions (OpenAI)",
    "responses": "Responses (OpenAI)",
    "messages": "Messages (Anthropic)",
    "other": "Other",
}
"""Names finance reads; a surface not listed here shows as its `api_surface` value."""
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_CHART_W, _CHART_H = 1016, 240
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 64, 28, 14, 30
_BAR_SMALL, _BAR_LARGE = (120, 10), (520, 18)


def render(month: str, reports: Sequence[KeyReport], *, generated_at: str) -> str:
    """The whole page for `month` (YYYY-MM); `generated_at` is shown as given."""
    year, number = (int(part) for part in month.split("-"))
    title = f"Usage and spend, {_MONTHS[number - 1]} {year}"
    totals = month_totals(reports)
    with_cache_write = totals.cache_write_tokens > 0
    ranked = sorted(reports, key=lambda r: (-r.totals.cost_usd, r.name, r.key_id))
    body = [
        "<header>",
        '<p class="eyebrow">Mantle Gateway &middot; usage report</p>',
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">UTC calendar month {_e(month)} &middot; amounts in US dollars '
        f"&middot; generated {_e(generated_at)}</p>",
        "</header>",
        "<main>",
        _summary(ranked, totals),
        _attention(ranked),
        *(_key_section(month, r, with_cache_write=with_cache_write) for r in ranked),
        "</main>",
        _footer(),
    ]
    page = "\n".join(
        [
            "<!doctype html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta http-equiv="Content-Security-Policy" '
            "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)} - Mantle Gateway</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )
    return page.encode("ascii", "xmlcharrefreplace").decode("ascii")


# ---- sections


def _summary(reports: Sequence[KeyReport], totals: Totals) -> str:
    near = sum(1 for r in reports if r.near_budget)
    figures = _figures(
        [
            ("Spend", _usd(totals.cost_usd), totals.cost_usd),
            ("Requests", _count(totals.requests), None),
            ("Input tokens", _count(totals.input_tokens), None),
            ("Output tokens", _count(totals.output_tokens), None),
            ("Keys with usage", _count(len(reports)), None),
            (f"Keys at {NEAR_BUDGET_PCT}%+ of budget", _count(near), None),
        ],
        css="figures month-figures",
    )
    if not reports:
        return _section("summary", "Month at a glance", figures, "<p>No usage this month.</p>")
    head = _head(
        [
            "Key",
            "Requests",
            "Input tokens",
            "Output tokens",
            "Spend",
            "Budget",
            "Remaining",
            "Budget used",
        ],
        ["", "num", "num", "num", "num", "num", "num", ""],
    )
    rows = [_overview_row(r) for r in reports]
    foot = (
        '<tr class="total"><th scope="row">Total</th>'
        f"{_num(_count(totals.requests))}{_num(_count(totals.input_tokens))}"
        f"{_num(_count(totals.output_tokens))}{_money(totals.cost_usd)}"
        "<td></td><td></td><td></td></tr>"
    )
    table = _table(
        "Spend and budget per key, highest spend first",
        head,
        rows,
        foot=foot,
        css="keys",
    )
    return _section("summary", "Month at a glance", figures, table)


def _overview_row(report: KeyReport) -> str:
    css = ' class="near-budget"' if report.near_budget else ""
    return (
        f'<tr{css} data-key-id="{_e(report.key_id)}">'
        f'<th scope="row">{_key_label(report)}{_near_note(report)}</th>'
        f"{_num(_count(report.totals.requests))}"
        f"{_num(_count(report.totals.input_tokens))}"
        f"{_num(_count(report.totals.output_tokens))}"
        f"{_money(report.totals.cost_usd)}"
        f"{_money(report.budget_usd) if report.budget_usd is not None else _num('none')}"
        f"{_money(report.remaining_usd)}"
        f'<td class="used">{_budget_bar(report, _BAR_SMALL)}</td>'
        "</tr>"
    )


def _attention(reports: Sequence[KeyReport]) -> str:
    flagged = [
        (r, reasons, model, t) for r in reports for (reasons, model), t in r.attention.items()
    ]
    if not flagged:
        lead = "<p>None this month: no estimated, incomplete or unbilled usage items.</p>"
        return _section("attention", "Needs a second look", lead)
    lead = (
        "<p>Usage items this month that are estimated, incomplete or unbilled, each counted "
        "once. Their amounts are already inside the spend above.</p>"
    )
    head = _head(
        ["Key", "Reason", "Model", "Requests", "Tokens", "Charged"],
        ["", "", "", "num", "num", "num"],
    )
    rows = [
        f'<tr data-key-id="{_e(r.key_id)}" data-reasons="{_e(" ".join(reasons))}">'
        f'<th scope="row">{_key_label(r)}</th><td>{_e(_reasons(reasons))}</td>'
        f"<td>{_e(model)}</td>{_num(_count(t.requests))}"
        f"{_num(_count(t.input_tokens + t.output_tokens))}{_money(t.cost_usd)}</tr>"
        for r, reasons, model, t in sorted(flagged, key=lambda f: (f[0].name, f[0].key_id, f[1:3]))
    ]
    total = Totals()
    for *_, t in flagged:
        total.merge(t)
    foot = (
        '<tr class="total"><th scope="row">Total</th><td></td><td></td>'
        f"{_num(_count(total.requests))}{_num(_count(total.input_tokens + total.output_tokens))}"
        f"{_money(total.cost_usd)}</tr>"
    )
    seen = {reason for _, reasons, _, _ in flagged for reason in reasons}
    glossary = "".join(
        f"<dt>{_e(reason.capitalize())}</dt><dd>{_e(text)}</dd>"
        for reason, text in ATTENTION.items()
        if reason in seen
    )
    table = _table(
        "Estimated, incomplete and unbilled items", head, rows, foot=foot, css="attention"
    )
    return _section(
        "attention", "Needs a second look", lead, table, f'<dl class="glossary">{glossary}</dl>'
    )


def _key_section(month: str, report: KeyReport, *, with_cache_write: bool) -> str:
    slug = _e(report.key_id)
    near = report.near_budget
    flag = (
        f'<p class="flag">{_e(_used_text(report))} of the monthly budget used</p>' if near else ""
    )
    tokens = [
        ("Requests", _count(report.totals.requests), None),
        ("Input tokens", _count(report.totals.input_tokens), None),
        ("Output tokens", _count(report.totals.output_tokens), None),
        ("Cached input tokens", _count(report.totals.cached_tokens), None),
        ("Reasoning tokens", _count(report.totals.reasoning_tokens), None),
    ]
    if with_cache_write:
        tokens.append(("Cache-write tokens", _count(report.totals.cache_write_tokens), None))
    return "\n".join(
        [
            f'<section class="key{" near-budget" if near else ""}" id="key-{slug}" '
            f'data-key-id="{slug}" aria-labelledby="key-{slug}-h">',
            f'<h2 id="key-{slug}-h">{_e(report.name or "(unnamed key)")} '
            f'<span class="key-id">{slug}</span></h2>',
            flag,
            '<div class="key-top">',
            _budget_block(report),
            _figures(tokens, css="figures key-figures"),
            "</div>",
            _key_usage(month, report, with_cache_write=with_cache_write),
            "</section>",
        ]
    )


def _key_usage(month: str, report: KeyReport, *, with_cache_write: bool) -> str:
    if not report.totals.requests:
        return '<p class="no-usage">No usage this month.</p>'
    total = report.totals.cost_usd
    return "\n".join(
        [
            _daily_chart(month, report),
            '<div class="splits">',
            _split_table(
                "By model", "Model", report.by_model, total, str, with_cache_write, "model"
            ),
            _split_table(
                "By API surface",
                "Surface",
                report.by_surface,
                total,
                lambda s: SURFACE_LABELS.get(s, s),
                with_cache_write,
                "surface",
            ),
            "</div>",
        ]
    )


def _budget_block(report: KeyReport) -> str:
    spent = report.spent_usd
    if report.budget_usd is None:
        return (
            f'<div class="budget"><h3>Spend</h3><p><strong data-usd="{spent}">'
            f"{_e(_usd(spent))}</strong> &middot; no monthly budget</p></div>"
        )
    remaining = report.remaining_usd or Decimal(0)
    state = "over by" if remaining < 0 else "remaining"
    line = (
        f'<strong data-usd="{spent}">{_e(_usd(spent))}</strong> of '
        f'<span data-usd="{report.budget_usd}">{_e(_usd(report.budget_usd))}</span> budget'
        f" &middot; {_e(_used_text(report))} used &middot; "
        f'<span data-usd="{remaining}">{_e(_usd(abs(remaining)))}</span> {state}'
    )
    return (
        '<div class="budget"><h3>Spend vs budget</h3>'
        f"{_budget_bar(report, _BAR_LARGE)}<p>{line}</p></div>"
    )


def _budget_bar(report: KeyReport, size: tuple[int, int]) -> str:
    used = report.budget_used_pct
    if used is None:
        text = "no budget" if report.budget_usd is None else "zero budget"
        return f'<span class="no-budget">{text}</span>'
    width, height = size
    shown = min(max(used, Decimal(0)), Decimal(100))
    filled = _coord(Decimal(width) * shown / 100)
    level = "over" if used >= 100 else "near" if report.near_budget else "ok"
    mark = _coord(Decimal(width) * NEAR_BUDGET_PCT / 100)
    label = (
        f"{_usd(report.spent_usd)} of {_usd(report.budget_usd or Decimal(0))} budget "
        f"({_used_text(report)})"
    )
    return (
        f'<span class="bar-wrap"><svg class="bar" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img" '
        f'data-used-pct="{percent(used)}">'
        f"<title>{_e(label)}</title>"
        f'<rect class="track" x="0" y="0" width="{width}" height="{height}"/>'
        f'<rect class="fill {level}" x="0" y="0" width="{filled}" height="{height}"/>'
        f'<line class="mark" x1="{mark}" y1="0" x2="{mark}" y2="{height}"/>'
        f'</svg> <span class="pct">{_e(_used_text(report))}</span></span>'
    )


def _daily_chart(month: str, report: KeyReport) -> str:
    year, number = (int(part) for part in month.split("-"))
    days = calendar.monthrange(year, number)[1]
    per_day = [report.by_day.get(f"{month}-{d:02d}", Totals()) for d in range(1, days + 1)]
    top = _nice_ceiling(max(t.cost_usd for t in per_day))
    plot_w = Decimal(_CHART_W - _PAD_LEFT - _PAD_RIGHT)
    plot_h = Decimal(_CHART_H - _PAD_TOP - _PAD_BOTTOM)
    base = _CHART_H - _PAD_BOTTOM

    def x(day: int) -> str:
        return _coord(_PAD_LEFT + plot_w * (day - 1) / (days - 1))

    def y(cost: Decimal) -> str:
        return _coord(base - plot_h * max(cost, Decimal(0)) / top)

    points = " ".join(f"{x(d)},{y(t.cost_usd)}" for d, t in enumerate(per_day, 1))
    grid = "".join(
        f'<line class="grid" x1="{_PAD_LEFT}" y1="{y(tick)}" x2="{_CHART_W - _PAD_RIGHT}" '
        f'y2="{y(tick)}"/><text class="axis" x="{_PAD_LEFT - 8}" y="{y(tick)}" '
        f'text-anchor="end" dominant-baseline="middle">{_e(_axis_usd(tick, top))}</text>'
        for tick in (Decimal(0), top / 2, top)
    )
    ticks = sorted({1, 8, 15, 22, days})
    labels = "".join(
        f'<text class="axis" x="{x(d)}" y="{base + 18}" text-anchor="middle">'
        f"{d} {_MONTHS[number - 1][:3]}</text>"
        for d in ticks
    )
    dots = "".join(
        f'<circle class="dot" cx="{x(d)}" cy="{y(t.cost_usd)}" r="3" '
        f'data-day="{month}-{d:02d}" data-usd="{t.cost_usd}">'
        f"<title>{d} {_MONTHS[number - 1][:3]}: {_e(_usd(t.cost_usd))}, "
        f"{_e(_count(t.requests))} requests</title></circle>"
        for d, t in enumerate(per_day, 1)
        if t.requests
    )
    busiest = max(range(days), key=lambda i: per_day[i].cost_usd)
    name = report.name or report.key_id
    summary = (
        f"Highest {_usd(per_day[busiest].cost_usd)} on {busiest + 1} {_MONTHS[number - 1]}; "
        f"usage on {sum(1 for t in per_day if t.requests)} of {days} days."
    )
    slug = _e(report.key_id)
    return (
        f'<figure class="daily"><figcaption>Spend per day (UTC)</figcaption>'
        f'<svg class="chart" width="{_CHART_W}" height="{_CHART_H}" '
        f'viewBox="0 0 {_CHART_W} {_CHART_H}" role="img" '
        f'aria-labelledby="daily-{slug}-t daily-{slug}-d">'
        f'<title id="daily-{slug}-t">{_e(f"Spend per day in {month}, {name}")}</title>'
        f'<desc id="daily-{slug}-d">{_e(summary)}</desc>'
        f"{grid}{labels}"
        f'<polygon class="area" points="{x(1)},{base} {points} {x(days)},{base}"/>'
        f'<polyline class="line" points="{points}"/>{dots}</svg></figure>'
    )


def _split_table(
    caption: str,
    label: str,
    groups: Mapping[str, Totals],
    total: Decimal,
    name: Callable[[str], str],
    with_cache_write: bool,
    attr: str,
) -> str:
    columns = ["Requests", "Input tokens", "Output tokens", "Cached", "Reasoning"]
    fields = ["input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"]
    if with_cache_write:
        columns.append("Cache write")
        fields.append("cache_write_tokens")
    head = _head([label, *columns, "Spend", "Share"], ["", *["num"] * (len(columns) + 2)])
    rows = [
        f'<tr data-{attr}="{_e(group)}"><th scope="row">{_e(name(group))}</th>'
        f"{_num(_count(t.requests))}"
        + "".join(_num(_count(getattr(t, f))) for f in fields)
        + f"{_money(t.cost_usd)}{_num(_share(t.cost_usd, total))}</tr>"
        for group, t in sorted(groups.items(), key=lambda g: (-g[1].cost_usd, g[0]))
    ]
    return _table(caption, head, rows, css=f"split by-{attr}")


def _footer() -> str:
    return (
        "<footer><p>Spend is the sum of the month's usage items, which the gateway's ledger "
        "keeps equal to each key's spend counter. Amounts are rounded to the cent, so a column "
        "may differ from its total by a cent; the exact figures are in "
        "<code>mantle-gateway usage report --format json</code> (or <code>csv</code>). "
        "Days are UTC.</p></footer>"
    )


# ---- building blocks


def _section(anchor: str, heading: str, *parts: str) -> str:
    return (
        f'<section id="{anchor}" aria-labelledby="{anchor}-h">'
        f'<h2 id="{anchor}-h">{_e(heading)}</h2>{"".join(parts)}</section>'
    )


def _figures(items: Sequence[tuple[str, str, Decimal | None]], *, css: str) -> str:
    cells = "".join(
        f"<div><dt>{_e(term)}</dt><dd{_exact(exact)}>{_e(text)}</dd></div>"
        for term, text, exact in items
    )
    return f'<dl class="{css}">{cells}</dl>'


def _table(caption: str, head: str, rows: Sequence[str], *, foot: str = "", css: str = "") -> str:
    tfoot = f"<tfoot>{foot}</tfoot>" if foot else ""
    return (
        f'<table class="{css}"><caption>{_e(caption)}</caption><thead>{head}</thead>'
        f"<tbody>{''.join(rows)}</tbody>{tfoot}</table>"
    )


def _head(cells: Sequence[str], classes: Sequence[str]) -> str:
    """A header row of column headers; "num" columns are right-aligned like their numbers."""
    return (
        "<tr>"
        + "".join(
            f'<th scope="col" class="{c}">{_e(t)}</th>' if c else f'<th scope="col">{_e(t)}</th>'
            for t, c in zip(cells, classes, strict=True)
        )
        + "</tr>"
    )


def _reasons(reasons: Sequence[str]) -> str:
    return ", ".join(reasons).capitalize()


def _near_note(report: KeyReport) -> str:
    """Said in words too, so the highlight survives a black-and-white print."""
    if not report.near_budget:
        return ""
    return f'<span class="near-note">{_e(_used_text(report))} of budget used</span>'


def _key_label(report: KeyReport) -> str:
    return (
        f'<span class="key-name">{_e(report.name or "(unnamed key)")}</span>'
        f'<span class="key-id">{_e(report.key_id)}</span>'
    )


def _num(text: str) -> str:
    return f'<td class="num">{_e(text)}</td>'


def _money(value: Decimal | None) -> str:
    if value is None:
        return '<td class="num"></td>'
    return f'<td class="num"{_exact(value)}>{_e(_usd(value))}</td>'


def _exact(value: Decimal | None) -> str:
    """The exact amount behind a rounded one, for whoever reads the page by machine."""
    return "" if value is None else f' data-usd="{value}"'


def _e(text: str) -> str:
    return escape(text, quote=True)


# ---- numbers


def usd(value: Decimal) -> str:
    """Dollars rounded half-up to the cent, as finance reads them: $1,234.57, -$3.20, < $0.01."""
    cents = value.quantize(CENT, rounding=ROUND_HALF_UP)
    if cents == 0 and value != 0:
        return "< $0.01" if value > 0 else "> -$0.01"
    return f"{'-' if cents < 0 else ''}${abs(cents):,.2f}"


_usd = usd


def _count(value: int) -> str:
    return f"{value:,}"


def _share(part: Decimal, whole: Decimal) -> str:
    return f"{percent(part * 100 / whole)}%" if whole else "-"


def _used_text(report: KeyReport) -> str:
    used = report.budget_used_pct
    return "-" if used is None else f"{percent(used)}%"


def _axis_usd(tick: Decimal, top: Decimal) -> str:
    if top >= 1:
        return f"${tick:,.2f}"
    places = max(2, -top.adjusted() + 1)
    return f"${tick:.{places}f}"


def _nice_ceiling(value: Decimal) -> Decimal:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value` (1 for nothing)."""
    if value <= 0:
        return Decimal(1)
    power = Decimal(10) ** value.adjusted()
    for step in ("1", "2", "2.5", "5", "10"):
        if value <= Decimal(step) * power:
            return Decimal(step) * power
    return 10 * power


def _coord(value: Decimal | int) -> str:
    """An SVG coordinate: one decimal is finer than a pixel."""
    return f"{Decimal(value).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP):f}"


_CSS = """
:root{--ink:#1c2024;--muted:#5b6570;--rule:#d9dee3;--soft:#f4f6f8;--accent:#1f5fa8;
--accent-soft:#dce8f5;--near:#b45309;--near-soft:#fff4e0;--over:#b42318;}
*{box-sizing:border-box}
html{-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{margin:0;color:var(--ink);background:#fff;
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header,main,footer{max-width:1080px;margin:0 auto;padding:0 32px}
header{padding-top:32px;padding-bottom:8px;border-bottom:2px solid var(--ink)}
.eyebrow{margin:0;color:var(--muted);text-transform:uppercase;letter-spacing:.08em;font-size:12px}
h1{margin:4px 0 6px;font-size:28px;font-weight:650}
h2{font-size:20px;margin:0 0 12px;font-weight:650}
h3{font-size:13px;margin:0 0 8px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
.meta{margin:0 0 12px;color:var(--muted)}
section{padding:28px 0 8px;border-bottom:1px solid var(--rule)}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:12px;
margin:0 0 20px}
.figures div{background:var(--soft);border-radius:6px;padding:10px 14px}
.figures dt{color:var(--muted);font-size:12px}
.figures dd{margin:2px 0 0;font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}
.key-figures dd{font-size:16px}
table{width:100%;border-collapse:collapse;margin:0 0 20px;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:0 0 6px;color:var(--muted);font-size:13px}
th,td{padding:6px 10px;border-bottom:1px solid var(--rule);text-align:left;vertical-align:middle}
thead th{font-size:12px;color:var(--muted);font-weight:600;border-bottom:1.5px solid var(--ink)}
tbody th{font-weight:500}
.num{text-align:right;white-space:nowrap}
tfoot th,tfoot td{font-weight:700;border-top:1.5px solid var(--ink);border-bottom:0}
.key-name{display:block}
.key-id{display:block;color:var(--muted);font:12px ui-monospace,Menlo,Consolas,monospace}
h2 .key-id{display:inline;margin-left:8px;font-size:13px;font-weight:400}
tr.near-budget th,tr.near-budget td{background:var(--near-soft)}
tr.near-budget th{box-shadow:inset 4px 0 0 var(--near)}
.near-note{display:block;color:var(--near);font-size:12px;font-weight:600}
td.used{white-space:nowrap}
.bar-wrap{display:inline-flex;align-items:center;gap:8px}
.bar .track{fill:#e6eaee}.bar .fill.ok{fill:var(--accent)}
.bar .fill.near{fill:var(--near)}.bar .fill.over{fill:var(--over)}
.bar .mark{stroke:var(--ink);stroke-width:1.5;stroke-dasharray:2 2}
.pct{font-variant-numeric:tabular-nums;min-width:4em;text-align:right}
.no-budget{color:var(--muted)}
section.key.near-budget{border-left:4px solid var(--near);padding-left:16px;margin-left:-20px}
.flag{display:inline-block;margin:0 0 14px;padding:3px 10px;border-radius:4px;
background:var(--near-soft);color:var(--near);font-weight:600;border:1px solid var(--near)}
.budget{margin:0 0 16px}.budget p{margin:6px 0 0}
.key-figures{grid-template-columns:repeat(auto-fit,minmax(120px,1fr))}
.daily{margin:8px 0 20px}
.daily figcaption{font-size:13px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em;
margin-bottom:4px}
.chart{width:100%;height:auto}
.chart .grid{stroke:var(--rule);stroke-width:1}
.chart .axis{fill:var(--muted);font-size:11px}
.chart .line{fill:none;stroke:var(--accent);stroke-width:2;stroke-linejoin:round}
.chart .area{fill:var(--accent-soft);opacity:.7}
.chart .dot{fill:#fff;stroke:var(--accent);stroke-width:2}
.attention td,.attention th{background:#fff}
.glossary{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;color:var(--muted);
margin:0 0 20px}
.glossary dt{font-weight:600;color:var(--ink)}.glossary dd{margin:0}
footer{padding-top:16px;padding-bottom:40px;color:var(--muted);font-size:12px}
code{font-family:ui-monospace,Menlo,Consolas,monospace}
@page{size:A4;margin:14mm 12mm}
@media print{
body{font-size:9pt}
th,td{padding:4px 6px}
.figures dd{font-size:13pt}
.keys .bar-wrap{flex-direction:column;align-items:flex-start;gap:2px}
.keys .pct{min-width:0;text-align:left}
.keys .bar{width:80px}
.month-figures{grid-template-columns:repeat(6,1fr);gap:6px}
.key-id{font-size:8pt}
header,main,footer{max-width:none;padding:0}
section{break-inside:auto}
section.key{break-before:page;border-bottom:0}
section.key.near-budget{margin-left:0;padding-left:10px}
table,figure,.key-top,.figures,tr{break-inside:avoid}
thead{display:table-header-group}
.figures div{border:1px solid var(--rule);padding:6px 8px}
}
"""
