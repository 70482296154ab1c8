"""The start-up banner of a `mantle-gateway serve` process, read the way a user sees it."""

from __future__ import annotations

import subprocess
import time


def read_banner(process: subprocess.Popen[str], timeout: float = 60.0) -> str:
    """Lines up to the `Try:` line (the banner's last but one); fails with what was printed."""
    assert process.stdout is not None
    lines: list[str] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.strip().startswith("Try:"):
            return "".join(lines)
    raise AssertionError("no banner:\n" + "".join(lines))
