"""A body that writes down how the runtime treated it, for handlers in another process.

Each line of `log` is one of `piece <n>` (handed out), `end` (exhausted), `close` (closed), so a
test can tell the runtime closed the body exactly once, and whether before or after the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path


class ClosingBody:
    def __init__(self, pieces: Iterable[bytes], log: str | None) -> None:
        self._pieces = iter(pieces)
        self._log = Path(log) if log else None
        self._count = 0

    def _write(self, line: str) -> None:
        if self._log is not None:
            with self._log.open("a") as file:
                file.write(line + "\n")

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            piece = next(self._pieces)
        except StopIteration:
            self._write("end")
            raise
        self._count += 1
        self._write(f"piece {self._count}")
        return piece

    def close(self) -> None:
        self._write("close")
