"""Streams a first event, then waits for the test's signal file before producing the last one.

It touches `produced_last` just before yielding the last event, so a test can prove the first
event reached the Runtime API while the last one did not exist yet: by order, not by clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _events(signal: Path, produced_last: Path) -> Iterator[bytes]:
    yield b"data: first\n\n"
    give_up = time.monotonic() + 10
    while not signal.exists():
        if time.monotonic() > give_up:
            raise TimeoutError("the test never sent the signal")
        time.sleep(0.002)
    produced_last.touch()
    yield b"data: last\n\n"


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    body = _events(Path(event["signal"]), Path(event["produced_last"]))
    return {"statusCode": 200, "headers": {"content-type": "text/event-stream"}, "body": body}
