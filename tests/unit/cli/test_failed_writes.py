"""Reading failed usage writes back out of log files: good lines, other lines, bad lines."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from mantle_gateway.cli.failed_writes import BadLine, FailedWrite, read
from mantle_gateway.errors import ConfigError

ITEM = {
    "pk": "k1#2026-05",
    "sk": "2026-05-01T00:00:00.000001Z#req-1",
    "month": "2026-05",
    "key_id": "k1",
    "request_id": "req-1",
    "cost_usd": "0.0012",
    "output_tokens": 8,
}


def failed(item: dict[str, object], **extra: object) -> str:
    return json.dumps(
        {"level": "ERROR", "message": "usage_write_failed", "usage_item": item, **extra}
    )


def lines_in(tmp_path: Path, *lines: str) -> str:
    path = tmp_path / "gateway.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_good_lines_other_lines_and_bad_lines_are_told_apart(tmp_path: Path) -> None:
    path = lines_in(
        tmp_path,
        failed(ITEM, reserved_usd="0.01"),  # 1: plain JSON line
        "START RequestId: 1f2e Version: $LATEST",  # 2: Lambda's own line
        "2026-05-01T00:00:00.000Z " + failed({**ITEM, "request_id": "req-2"}),  # 3: export
        failed(ITEM)[:70],  # 4: cut short
        json.dumps({"message": "request served", "status": 200}),  # 5: another message
        "\x00\xff garbage usage_write_failed",  # 6: names it, holds no JSON
        json.dumps({"message": "retrying usage_write_failed items"}),  # 7: mentions it only
        failed({k: v for k, v in ITEM.items() if k != "cost_usd"}),  # 8: item incomplete
        failed({**ITEM, "cost_usd": "lots"}),  # 9: cost not a number
        json.dumps({"message": "usage_write_failed"}),  # 10: no item
        "",
    )

    found = list(read([path]))

    good = [f for f in found if isinstance(f, FailedWrite)]
    assert [g.item["request_id"] for g in good] == ["req-1", "req-2"]
    assert good[0].item["cost_usd"] == Decimal("0.0012")
    # A line from before holds carries only reserved_usd: settled without a hold.
    assert good[0].reservation is not None
    assert (good[0].reservation.usd, good[0].reservation.hold) == (Decimal("0.01"), None)
    assert good[1].reservation is None
    bad = {f.number: f.reason for f in found if isinstance(f, BadLine)}
    assert bad == {
        4: "truncated or invalid JSON",
        6: "names usage_write_failed but holds no JSON",
        8: "usage_item lacks cost_usd",
        9: "cost_usd or reserved_usd is not a number",
        10: "no usage_item object",
    }
    assert BadLine(path, 4, "x").where == f"{path}:4"


def test_lines_are_numbered_per_file(tmp_path: Path) -> None:
    first = lines_in(tmp_path, "noise", failed(ITEM)[:50])
    second = tmp_path / "second.log"
    second.write_text(failed(ITEM)[:50] + "\n", encoding="utf-8")

    bad = [f.where for f in read([first, str(second)]) if isinstance(f, BadLine)]

    assert bad == [f"{first}:2", f"{second}:1"]


def test_a_missing_file_stops_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*nope\.log"):
        list(read([str(tmp_path / "nope.log")]))
