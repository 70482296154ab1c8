"""The one table `make bench` prints, as Markdown so it can be pasted into the README as is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["pass", "fail", "info", "not measured"]


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    """A stable identifier (the smoke test checks that every expected key is present)."""
    measure: str
    value: str
    target: str = "—"
    verdict: Verdict = "info"
    number: float | None = None
    """The raw figure behind `value` (None when not measured), for checks and JSON output."""


@dataclass(slots=True)
class Table:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def row(self, key: str) -> Row:
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(key)

    def render(self) -> str:
        header = ("measure", "value", "target", "result")
        cells = [(r.measure, r.value, r.target, r.verdict) for r in self.rows]
        widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]

        def line(values: tuple[str, ...]) -> str:
            return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

        out = [self.title, "", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        out += [line(c) for c in cells]
        if self.notes:
            out.append("")
            out += [f"- {note}" for note in self.notes]
        return "\n".join(out)


def verdict(passed: bool | None) -> Verdict:
    if passed is None:
        return "not measured"
    return "pass" if passed else "fail"
