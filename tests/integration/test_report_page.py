"""The monthly report as finance gets it. GIVEN a month of usage written through the real ledger
into DynamoDB (moto server) for four keys — several models, surfaces and days, one key over 80%
of its budget, one estimated item, one unpriced model, a key named like an XSS attack — WHEN
`mantle-gateway usage report` runs as a user runs it, THEN the table, CSV, JSON and HTML formats
agree to the cent, and headless Chromium (the Debian package) draws the page with the JSON's
numbers, sane bars and lines, and that key highlighted. Chromium tells what it drew through a
measuring script added to a copy of the page (the page itself has none, and its CSP would block
it); a screenshot and a PDF print are kept under .artifacts/usage-report/ to look at.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from mantle_gateway.core.auth import issue_key
from mantle_gateway.core.pricing import PriceTable
from mantle_gateway.settings import Settings
from mantle_gateway.store.dynamo import Dynamo
from mantle_gateway.store.keys import KeyStore
from mantle_gateway.store.ledger import Ledger
from mantle_gateway.usage import TokenCounts, UsageRecord
from tests.support.html_tree import parse

MONTH = "2030-03"
"""A month no other test writes, so the all-keys report holds exactly these keys."""
DAYS = 31
HOSTILE = "<script>alert(1)</script>"
COMMAND = str(Path(sys.executable).parent / "mantle-gateway")
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "usage-report"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,2000",
)
PRICES = PriceTable(
    {"anthropic.claude-sonnet-4-5": {"input": 3, "output": 15, "cached": 0.3, "cache_write": 3.75}}
)
AMBER = "rgb(180, 83, 9)"
"""--near in the page's CSS: the colour of a key at 80% of its budget or more."""


@dataclass(frozen=True)
class Use:
    key: str
    day: int
    model: str
    surface: str
    tokens: TokenCounts
    estimated: bool = False


def _plan() -> list[Use]:
    """Deterministic usage: every key idle on some days, so the lines touch zero."""
    rng = random.Random(14)
    uses: list[Use] = []

    def add(key: str, n: int, days: range, choices: list[tuple[str, str]]) -> None:
        for _ in range(n):
            model, surface = rng.choice(choices)
            tokens = TokenCounts(
                input=rng.randint(20_000, 240_000),
                output=rng.randint(1_000, 30_000),
                cached=rng.choice((0, 0, 4_096)),
                reasoning=rng.choice((0, 512)) if model.startswith("openai") else 0,
                cache_write=rng.choice((0, 2_048)) if surface == "messages" else 0,
            )
            uses.append(Use(key, rng.choice(days), model, surface, tokens))

    add(
        "support",
        40,
        range(1, 26),
        [("openai.gpt-5.4", "chat_completions"), ("openai.gpt-oss-120b", "responses")],
    )
    add(
        "analytics",
        24,
        range(4, 32),
        [("openai.gpt-5.4", "responses"), ("anthropic.claude-sonnet-4-5", "messages")],
    )
    add("hostile", 6, range(10, 14), [("openai.gpt-oss-20b", "chat_completions")])
    add(
        "research",
        12,
        range(2, 30, 3),
        [("openai.gpt-oss-20b", "responses"), ("acme.unpriced-model", "chat_completions")],
    )
    uses.append(
        Use(
            "analytics",
            17,
            "openai.gpt-5.4",
            "responses",
            TokenCounts(input=52_000, output=700),
            estimated=True,
        )
    )
    return uses


def _cost(use: Use) -> Decimal:
    return PRICES.cost(use.model, use.tokens) or Decimal(0)


@dataclass(frozen=True)
class Month:
    key_ids: dict[str, str]
    """Plan name → key id."""
    formats: dict[str, str]
    """--format → what the command printed."""

    @property
    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.formats["json"])
        return document

    def key(self, name: str) -> dict[str, Any]:
        return next(k for k in self.document["keys"] if k["key_id"] == self.key_ids[name])


@pytest.fixture(scope="module")
def month(settings: Settings, dynamo: Dynamo, dynamodb: Any) -> Month:
    # GIVEN a month of usage for four keys, written through the ledger (items and spend counters)
    uses = _plan()
    spend = defaultdict(Decimal)
    for use in uses:
        spend[use.key] += _cost(use)
    budgets = {
        "support": (spend["support"] / Decimal("0.9")).quantize(Decimal(1), ROUND_CEILING),
        "analytics": (spend["analytics"] * 4).quantize(Decimal(1), ROUND_CEILING),
        "hostile": Decimal(50),
        "research": None,
    }
    names = {
        "support": "Support bot",
        "analytics": "Analytics",
        "hostile": HOSTILE,
        "research": "Research",
    }
    store = KeyStore(dynamo, settings.keys_table)
    key_ids = {}
    for plan_name, name in names.items():
        _, record = issue_key(
            store,
            name=name,
            now=datetime(2030, 3, 1, tzinfo=UTC),
            monthly_budget_usd=budgets[plan_name],
        )
        key_ids[plan_name] = record.key_id
    ledger = Ledger(dynamo, usage_table=settings.usage_table, limits_table=settings.limits_table)
    for n, use in enumerate(uses):
        written = ledger.record(
            UsageRecord(
                request_id=str(uuid.uuid4()),
                timestamp=f"{MONTH}-{use.day:02d}T{n % 24:02d}:15:00.{n:06d}Z",
                key_id=key_ids[use.key],
                model=use.model,
                tokens=use.tokens,
                cost_usd=_cost(use),
                status="incomplete" if use.estimated else "ok",
                latency_ms=900,
                door="local",
                stream=True,
                api_surface=use.surface,
                outcome="client_disconnected" if use.estimated else None,
                estimated=use.estimated,
            )
        )
        assert written
    # WHEN the report is printed in each format, as a user runs it
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint_url,
        "KEYS_TABLE": settings.keys_table,
        "USAGE_TABLE": settings.usage_table,
        "LIMITS_TABLE": settings.limits_table,
    }
    formats = {
        fmt: subprocess.run(
            [COMMAND, "usage", "report", "--month", MONTH, "--format", fmt],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        for fmt in ("json", "csv", "table", "html")
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report.html").write_text(formats["html"], encoding="ascii")
    return Month(key_ids, formats)


def money(value: str | Decimal) -> str:
    """How finance reads an amount: half up to the cent (written apart from the page's code)."""
    exact = Decimal(value)
    cents = exact.quantize(Decimal("0.01"), ROUND_HALF_UP)
    if cents == 0 and exact > 0:
        return "< $0.01"
    return f"{'-' if cents < 0 else ''}${abs(cents):,.2f}"


def test_the_month_has_what_finance_must_see(month: Month) -> None:
    document = month.document
    assert {k["key_id"] for k in document["keys"]} == set(month.key_ids.values())
    assert [k["near_budget"] for k in document["keys"] if k["near_budget"]] == [True]
    assert month.key("support")["near_budget"] and month.key("support")["budget_used_pct"] >= "80"
    assert month.key("hostile")["name"] == HOSTILE
    reasons = {tuple(a["reasons"]) for k in document["keys"] for a in k["attention"]}
    assert reasons == {("estimated", "incomplete"), ("unbilled",)}
    surfaces = {r["api_surface"] for k in document["keys"] for r in k["by_surface_and_model"]}
    assert surfaces == {"chat_completions", "responses", "messages"}
    assert month.key("analytics")["cache_write_tokens"] > 0


def test_table_csv_json_and_html_agree_to_the_cent(month: Month) -> None:
    rows = list(csv.DictReader(io.StringIO(month.formats["csv"])))
    table = _table_rows(month.formats["table"])
    page = parse(month.formats["html"])
    for key in month.document["keys"]:
        for source in (rows, table):
            total = next(r for r in source if r["key_id"] == key["key_id"] and r["model"] == "*")
            assert Decimal(total["cost_usd"]) == Decimal(key["cost_usd"])
            assert int(total["requests"]) == key["requests"]
            assert int(total["cache_write_tokens"]) == key["cache_write_tokens"]
        assert Decimal(key["cost_usd"]) == Decimal(key["spend_counter_usd"])
        overview = page.where("tr", data_key_id=key["key_id"])[0]
        spent = next(td for td in overview.all("td") if "data-usd" in td.attrs)
        assert Decimal(spent.attrs["data-usd"]) == Decimal(key["cost_usd"])
        assert spent.all_text == money(key["cost_usd"])
    total = page.where("table", class_="keys")[0].all("tfoot")[0]
    assert money(month.document["totals"]["cost_usd"]) in [td.all_text for td in total.all("td")]


def _table_rows(text: str) -> list[dict[str, str]]:
    """The fixed-width table: each column starts where its header does (names hold spaces)."""
    header, *lines = text.splitlines()
    names = header.split()
    starts = [
        header.index(f"{name} ") if name != names[-1] else header.rindex(name) for name in names
    ]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return [
        {name: line[a:b].strip() for name, (a, b) in zip(names, bounds, strict=True)}
        for line in lines
    ]


# ---- in the browser


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); .ci/run has it")
    profile = tmp_path_factory.mktemp("chromium-profile")
    return [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]


def _chromium(command: list[str], *args: str) -> str:
    done = subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


MEASURE = """
<script id="measure">
addEventListener('load', () => {
  const box = e => { const r = e.getBoundingClientRect();
    return {x: r.left, y: r.top, w: r.width, h: r.height, cx: r.left + r.width / 2,
            cy: r.top + r.height / 2}; };
  const text = e => e.innerText.trim();
  const css = (e, p) => getComputedStyle(e).getPropertyValue(p);
  const cells = tr => [...tr.cells].map(text);
  const exact = tr => [...tr.querySelectorAll('[data-usd]')].map(e => e.dataset.usd);
  const figures = dl => Object.fromEntries([...dl.querySelectorAll('dt')]
    .map(dt => [text(dt), text(dt.nextElementSibling)]));
  const out = {
    scripts: document.querySelectorAll('script:not(#measure)').length,
    title: document.title,
    figures: figures(document.querySelector('.month-figures')),
    overview: {}, keys: {}, attention: [],
    overviewTotal: cells(document.querySelector('table.keys tfoot tr')),
  };
  for (const tr of document.querySelectorAll('table.keys tbody tr'))
    out.overview[tr.dataset.keyId] = {cells: cells(tr), exact: exact(tr),
      background: css(tr.cells[1], 'background-color')};
  for (const tr of document.querySelectorAll('table.attention tbody tr'))
    out.attention.push({key: tr.dataset.keyId, reasons: tr.dataset.reasons, cells: cells(tr)});
  for (const section of document.querySelectorAll('section.key')) {
    const k = {heading: text(section.querySelector('h2')), box: box(section),
      flag: section.querySelector('.flag') && text(section.querySelector('.flag')),
      border: [css(section, 'border-left-width'), css(section, 'border-left-color')],
      figures: figures(section.querySelector('.key-figures')), tables: {},
      budget: text(section.querySelector('.budget p'))};
    const bar = section.querySelector('svg.bar');
    if (bar) k.bar = {pct: bar.dataset.usedPct, track: box(bar.querySelector('.track')),
      fill: box(bar.querySelector('.fill')), colour: css(bar.querySelector('.fill'), 'fill')};
    const chart = section.querySelector('svg.chart');
    const line = chart.querySelector('.line');
    k.chart = {box: box(chart), line: box(line), points: line.points.length,
      stroke: css(line, 'stroke'), title: chart.querySelector('title').textContent,
      dots: [...chart.querySelectorAll('.dot')].map(d => ({day: d.dataset.day,
        usd: d.dataset.usd, box: box(d)}))};
    for (const table of section.querySelectorAll('table'))
      k.tables[text(table.caption)] = [...table.tBodies[0].rows].map(tr => ({
        id: tr.dataset.model || tr.dataset.surface, cells: cells(tr), exact: exact(tr)}));
    out.keys[section.dataset.keyId] = k;
  }
  const pre = document.createElement('pre');
  pre.id = 'measured';
  pre.textContent = JSON.stringify(out);
  document.body.append(pre);
});
</script>
"""


def _measure(chromium: list[str], page: str, path: Path, *, keep_policy: bool = False) -> Any:
    """What Chromium drew, read by MEASURE from a copy of the page (None if it never ran)."""
    if not keep_policy:
        page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    path.write_text(page.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = _chromium(chromium, "--dump-dom", path.as_uri())
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.DOTALL)
    return json.loads(unescape(found.group(1))) if found else None


@pytest.fixture(scope="module")
def drawn(chromium: list[str], month: Month, tmp_path_factory: pytest.TempPathFactory) -> Any:
    measured = _measure(chromium, month.formats["html"], tmp_path_factory.mktemp("page") / "m.html")
    assert measured is not None, "the measuring script did not run"
    return measured


def test_chromium_shows_the_json_reports_numbers(month: Month, drawn: Any) -> None:
    totals = month.document["totals"]
    assert drawn["title"].startswith("Usage and spend, March 2030")
    assert drawn["figures"]["Spend"] == money(totals["cost_usd"])
    assert drawn["figures"]["Requests"] == f"{totals['requests']:,}"
    assert drawn["figures"]["Input tokens"] == f"{totals['input_tokens']:,}"
    assert drawn["overviewTotal"][4] == money(totals["cost_usd"])
    for key in month.document["keys"]:
        row = drawn["overview"][key["key_id"]]
        # Key | Requests | Input | Output | Spend | Budget | Remaining | Budget used
        assert row["cells"][1:5] == [
            f"{key['requests']:,}",
            f"{key['input_tokens']:,}",
            f"{key['output_tokens']:,}",
            money(key["cost_usd"]),
        ]
        assert row["exact"][0] == key["cost_usd"]
        drawn_key = drawn["keys"][key["key_id"]]
        spent = money(key["spend_counter_usd"])
        if key["budget_usd"] is None:
            assert row["cells"][5:] == ["none", "", "no budget"]
            assert drawn_key["budget"] == f"{spent} \u00b7 no monthly budget"
        else:
            assert row["cells"][5:7] == [money(key["budget_usd"]), money(key["remaining_usd"])]
            assert row["cells"][7] == f"{key['budget_used_pct']}%"
            assert drawn_key["budget"] == (
                f"{spent} of {money(key['budget_usd'])} budget \u00b7 "
                f"{key['budget_used_pct']}% used \u00b7 {money(key['remaining_usd'])} remaining"
            )
        assert drawn_key["figures"]["Requests"] == f"{key['requests']:,}"
        assert drawn_key["figures"]["Reasoning tokens"] == f"{key['reasoning_tokens']:,}"
        assert drawn_key["figures"]["Cache-write tokens"] == f"{key['cache_write_tokens']:,}"
        _check_splits(key, drawn_key["tables"])
        dots = {d["day"]: d["usd"] for d in drawn_key["chart"]["dots"]}
        assert dots == {d["day"]: d["cost_usd"] for d in key["by_day"]}


def _check_splits(key: dict[str, Any], tables: dict[str, Any]) -> None:
    """The per-model and per-surface tables are the JSON's surface-and-model rows, summed."""
    for caption, field in (("By model", "model"), ("By API surface", "api_surface")):
        expected: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0)])
        for part in key["by_surface_and_model"]:
            expected[part[field]][0] += part["requests"]
            expected[part[field]][1] += Decimal(part["cost_usd"])
        shown = {row["id"]: row for row in tables[caption]}
        assert set(shown) == set(expected)
        for name, (requests, cost) in expected.items():
            assert shown[name]["cells"][1] == f"{requests:,}"
            assert Decimal(shown[name]["exact"][0]) == cost
            assert money(cost) in shown[name]["cells"]


def test_chromium_draws_budget_bars_and_daily_lines_to_scale(month: Month, drawn: Any) -> None:
    for key in month.document["keys"]:
        drawn_key = drawn["keys"][key["key_id"]]
        if key["budget_usd"] is None:
            assert "bar" not in drawn_key
        else:
            bar = drawn_key["bar"]
            assert bar["pct"] == key["budget_used_pct"]
            assert bar["track"]["w"] > 400 and bar["track"]["h"] > 10
            share = min(Decimal(key["budget_used_pct"]), Decimal(100)) / 100
            assert abs(bar["fill"]["w"] - bar["track"]["w"] * float(share)) < 1.0
            assert bar["fill"]["x"] == bar["track"]["x"]
        chart = drawn_key["chart"]
        assert chart["points"] == DAYS
        assert chart["box"]["w"] > 600 and chart["box"]["h"] > 150
        assert chart["line"]["w"] > 0.9 * (chart["box"]["w"] - 100)  # spans the month
        _check_line_to_scale(chart)
        assert HOSTILE not in chart["title"] or key["name"] == HOSTILE


def _check_line_to_scale(chart: dict[str, Any]) -> None:
    """Each dot's height above the zero line is its day's spend over the busiest day's."""
    dots = sorted(chart["dots"], key=lambda d: d["day"])
    day_width = (chart["line"]["w"]) / (DAYS - 1)  # the line runs from the 1st to the 31st
    for dot in dots:
        day = int(dot["day"][-2:])
        assert abs(dot["box"]["cx"] - (chart["line"]["x"] + (day - 1) * day_width)) < 1.0, dot
    top = max(dots, key=lambda d: Decimal(d["usd"]))
    zero = chart["line"]["y"] + chart["line"]["h"]  # every key is idle on some day
    for dot in dots:
        assert chart["box"]["x"] < dot["box"]["cx"] < chart["box"]["x"] + chart["box"]["w"]
        expected = float(Decimal(dot["usd"]) / Decimal(top["usd"]))
        height = (zero - dot["box"]["cy"]) / (zero - top["box"]["cy"])
        assert abs(height - expected) < 0.02, dot


def test_chromium_highlights_the_key_over_80_percent(month: Month, drawn: Any) -> None:
    for key in month.document["keys"]:
        drawn_key = drawn["keys"][key["key_id"]]
        row = drawn["overview"][key["key_id"]]
        if key["near_budget"]:
            assert drawn_key["border"] == ["4px", AMBER]
            assert drawn_key["flag"] == f"{key['budget_used_pct']}% of the monthly budget used"
            assert drawn_key["bar"]["colour"] == AMBER
            assert row["background"] not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
            assert f"{key['budget_used_pct']}% of budget used" in row["cells"][0]
        else:
            assert drawn_key["flag"] is None
            assert drawn_key["border"][0] == "0px"
            assert row["background"] == "rgba(0, 0, 0, 0)"
            assert drawn_key.get("bar", {}).get("colour") != AMBER


def test_chromium_shows_the_hostile_key_name_as_text(month: Month, drawn: Any) -> None:
    assert drawn["scripts"] == 0
    heading = drawn["keys"][month.key_ids["hostile"]]["heading"]
    assert heading == f"{HOSTILE} {month.key_ids['hostile']}"
    assert drawn["overview"][month.key_ids["hostile"]]["cells"][0].startswith(HOSTILE)


def test_chromium_calls_out_the_estimated_and_unbilled_items(month: Month, drawn: Any) -> None:
    expected = sorted(
        (
            k["key_id"],
            " ".join(a["reasons"]),
            a["model"],
            f"{a['requests']:,}",
            money(a["cost_usd"]),
        )
        for k in month.document["keys"]
        for a in k["attention"]
    )
    shown = sorted(
        (row["key"], row["reasons"], row["cells"][2], row["cells"][3], row["cells"][5])
        for row in drawn["attention"]
    )
    assert shown == expected
    unbilled = next(row for row in drawn["attention"] if row["reasons"] == "unbilled")
    assert unbilled["key"] == month.key_ids["research"] and unbilled["cells"][5] == "$0.00"


def test_the_page_policy_blocks_any_script_that_got_in(
    chromium: list[str], month: Month, tmp_path: Path
) -> None:
    assert _measure(chromium, month.formats["html"], tmp_path / "p.html", keep_policy=True) is None


def test_screenshot_and_print_are_kept_as_artifacts(chromium: list[str], month: Month) -> None:
    page = (ARTIFACTS / "report.html").as_uri()
    png, pdf = ARTIFACTS / "report.png", ARTIFACTS / "report.pdf"
    png.unlink(missing_ok=True)
    pdf.unlink(missing_ok=True)
    _chromium(chromium, f"--screenshot={png}", page)
    _chromium(chromium, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page)
    header = png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1200, 2000)
    pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf.read_bytes()))
    assert pages >= 1 + len(month.key_ids)  # the month, then each key from a new page
