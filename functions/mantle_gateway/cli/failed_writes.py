"""The `usage_write_failed` records in log files, for `mantle-gateway usage replay`.

A log file holds many other lines (Lambda's START/END/REPORT, the gateway's other messages,
a CloudWatch export's timestamps before each JSON message): those are not usage and are passed
over. A line that names `usage_write_failed` but cannot be read back into a whole usage item
(cut short, edited, its item incomplete) is usage that cannot be replayed: it is reported as a
`BadLine` with its file and line number, and the lines after it are read on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from mantle_gateway import schema
from mantle_gateway.errors import ConfigError
from mantle_gateway.store.ledger import FAILED_WRITE_MESSAGE as MESSAGE
from mantle_gateway.store.ledger import reservation_from_log
from mantle_gateway.store.limits import Reservation

_REQUIRED = (
    schema.USAGE_PK,
    schema.USAGE_SK,
    schema.USAGE_MONTH_ATTR,
    "key_id",
    "request_id",
    "cost_usd",
)


@dataclass(frozen=True, slots=True)
class FailedWrite:
    item: dict[str, Any]
    """The usage item, `cost_usd` as a Decimal."""
    reservation: Reservation | None
    """What its request reserved (settled by the write as the gateway's write would have)."""


@dataclass(frozen=True, slots=True)
class BadLine:
    path: str
    number: int
    """1-based."""
    reason: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.number}"


def read(paths: list[str]) -> Iterator[FailedWrite | BadLine]:
    """Every failed write in `paths`, in order, and every line that looked like one but was not
    readable. A file that cannot be opened stops the command (ConfigError, one line)."""
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as lines:
                for number, line in enumerate(lines, start=1):
                    found = _parse(line)
                    if isinstance(found, str):
                        yield BadLine(path, number, found)
                    elif found is not None:
                        yield found
        except OSError as exc:
            raise ConfigError(f"usage replay: cannot read {path}: {exc.strerror}") from exc


def _parse(line: str) -> FailedWrite | str | None:
    """The failed write on this line, None when the line is not one, or why it is unreadable."""
    if MESSAGE not in line:
        return None
    start = line.find("{")
    if start < 0:
        return "names usage_write_failed but holds no JSON"
    try:
        record = json.loads(line[start:])
    except ValueError:
        return "truncated or invalid JSON"
    if not isinstance(record, dict) or record.get("message") != MESSAGE:
        return None  # another message that merely mentions it
    item = record.get("usage_item")
    if not isinstance(item, dict):
        return "no usage_item object"
    missing = [name for name in _REQUIRED if name not in item]
    if missing:
        return "usage_item lacks " + ", ".join(missing)
    try:
        cost = Decimal(str(item["cost_usd"]))
        reserved = Decimal(str(record.get("reserved_usd", "0")))
    except InvalidOperation:
        return "cost_usd or reserved_usd is not a number"
    if not (cost.is_finite() and reserved.is_finite()):
        return "cost_usd or reserved_usd is not a number"
    full = {**item, "cost_usd": cost}
    return FailedWrite(full, reservation_from_log(full, record))
