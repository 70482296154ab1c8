"""`python -m bench --quick` runs end to end and its table has every row with a sane value.

No timing thresholds (DESIGN §9: timed tests are not benchmarks): the checks are that each
measure produced a figure of the right kind — finite, positive where a duration or a rate must
be, whole where it is a count — and that the rendered table shows every row.
"""

from __future__ import annotations

import math

import pytest

from bench import cli, config
from bench.run import run
from bench.table import Table

ROWS = (
    "dynamodb_rtt",
    "dynamodb_rtt_get",
    "added_c1",
    "gateway_share",
    "added_c1_b2b",
    "added_c1_b2b_floor",
    "added_cn",
    "ttfb",
    "ttfb_messages",
    "guarded_c1",
    "guarded_ttfb",
    "cpu_core",
    "cpu_live",
    "relay_network",
    "relay_cpu",
    "relay_in_process",
    "relay_memory",
    "stream_tail",
    "import_handler",
    "import_first_request",
    "import_bundle",
    "import_deps",
    "import_layer",
    "package_function",
    "package_layer",
    "trips_before",
    "trips_cold",
    "trips_after",
    "latency_stored",
    "litellm",
)
POSITIVE = (
    "dynamodb_rtt",
    "dynamodb_rtt_get",
    "cpu_core",
    "relay_network",
    "relay_cpu",
    "relay_in_process",
    "relay_memory",
    "import_handler",
    "import_first_request",
    "import_deps",
    "import_layer",
    "package_layer",
    "latency_stored",
)
# cpu_live comes from /proc clock ticks (10 ms): a --quick run may see none in a process.
FINITE = (
    "cpu_live",
    "added_c1",
    "gateway_share",
    "added_c1_b2b",
    "added_c1_b2b_floor",
    "added_cn",
    "ttfb",
    "ttfb_messages",
    "guarded_c1",
    "guarded_ttfb",
    "stream_tail",
)


@pytest.fixture(scope="module")
def table() -> Table:
    return run(config.QUICK)


@pytest.mark.slow
def test_every_row_is_there_once(table: Table) -> None:
    assert [row.key for row in table.rows] == list(ROWS)


@pytest.mark.slow
def test_the_rendered_table_shows_every_row(table: Table) -> None:
    lines = table.render().splitlines()
    rows = [line for line in lines if line.startswith("| ")]
    assert len(rows) == len(ROWS) + 1  # the header, then one line per row
    for row in table.rows:
        assert any(row.measure in line and row.value in line for line in rows), row.key
    assert all(line.count(" | ") == 3 for line in rows)


@pytest.mark.slow
def test_figures_are_sane(table: Table) -> None:
    for key in POSITIVE:
        number = table.row(key).number
        assert number is not None, key
        assert math.isfinite(number), key
        assert number > 0, key
    for key in FINITE:
        number = table.row(key).number
        assert number is not None, key
        assert math.isfinite(number), key


@pytest.mark.slow
def test_round_trips_are_whole_counts(table: Table) -> None:
    before = table.row("trips_before").number
    cold = table.row("trips_cold").number
    assert before is not None
    assert cold is not None
    assert before == int(before)
    assert 0 <= before <= cold <= 10
    # after the last byte: the usage write alone. The bench's keys have a budget and the default
    # alert thresholds, none reached, and the write itself says so: no budget-alert read
    # (docs/decisions/0010-budget-alerts.md)
    assert table.row("trips_after").number == 1
    assert table.row("trips_after").value.count("after (TransactWriteItems)") == 2


@pytest.mark.slow
def test_verdicts_are_known_and_quick_skips_pip(table: Table) -> None:
    assert {row.verdict for row in table.rows} <= {"pass", "fail", "info", "not measured"}
    assert table.row("package_function").verdict == "not measured"
    assert table.row("import_bundle").verdict == "not measured"
    targeted = [row for row in table.rows if row.target != "—"]
    assert all(row.verdict != "info" for row in targeted)


def test_repeats_must_be_positive() -> None:
    with pytest.raises(SystemExit):
        cli.main(["--repeats", "0"])
