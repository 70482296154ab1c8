"""The local door's background usage writer: off the caller's thread, bounded, never dropping.

The ledger behind it is a fake that holds every write until released, so each test states the
order of events (queued, being written, written, logged) without timing anything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from mantle_gateway.cli.failed_writes import FailedWrite, read
from mantle_gateway.observability import logger
from mantle_gateway.store.background_ledger import BackgroundLedger
from mantle_gateway.store.ledger import Ledger
from mantle_gateway.store.limits import Reservation
from mantle_gateway.usage import TokenCounts, UsageRecord

WAIT = 10.0


def usage(request_id: str) -> UsageRecord:
    return UsageRecord(
        request_id=request_id,
        timestamp="2026-11-24T09:30:00.000000Z",
        key_id="key_1",
        model="openai.gpt-oss-120b",
        tokens=TokenCounts(input=10, output=5),
        cost_usd=Decimal("0.000123"),
        status="ok",
        latency_ms=12,
        door="local",
        stream=False,
    )


class HeldLedger(Ledger):
    """The real ledger's logging; each write starts, then waits for `release`, then counts as
    written (DynamoDB is never called)."""

    def __init__(self) -> None:
        super().__init__(None, usage_table="usage", limits_table="limits")  # type: ignore[arg-type]
        self.release = threading.Event()
        self.started: list[tuple[str, str]] = []
        """(request id, the writing thread's name), in order."""
        self.written: list[tuple[str, Reservation | None]] = []
        self._changed = threading.Condition()

    def record(self, record: UsageRecord, reservation: Reservation | None = None) -> bool:
        with self._changed:
            self.started.append((record.request_id, threading.current_thread().name))
            self._changed.notify_all()
        self.release.wait()
        with self._changed:
            self.written.append((record.request_id, reservation))
            self._changed.notify_all()
        return True

    def wait_started(self, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.started) >= count, WAIT)


@pytest.fixture
def held() -> Iterator[HeldLedger]:
    ledger = HeldLedger()
    yield ledger
    ledger.release.set()  # let the workers of this test finish


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "gateway.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    yield path
    logger.removeHandler(handler)
    handler.close()


def test_record_returns_while_the_write_is_still_held(held: HeldLedger) -> None:
    writer = BackgroundLedger(held, workers=1)
    reservation = Reservation("key_1", "2026-12", "r1", Decimal("0.5"), 40, 202612011200)
    assert writer.record(usage("r1"), reservation) is True
    held.wait_started(1)
    assert held.written == []  # the caller is back; the write is still going on
    assert held.started[0][1].startswith("usage-writer-")
    held.release.set()
    assert writer.wait_idle(WAIT)
    assert held.written == [("r1", reservation)]


def test_a_full_queue_writes_inline_on_the_callers_thread(held: HeldLedger) -> None:
    # GIVEN one worker busy with r1 and a queue of one holding r2
    writer = BackgroundLedger(held, capacity=1, workers=1)
    writer.record(usage("r1"))
    held.wait_started(1)
    writer.record(usage("r2"))

    # WHEN r3 comes: no room, so its caller writes it itself (back-pressure, not a drop)
    caller = threading.Thread(target=writer.record, args=(usage("r3"),), name="connection")
    caller.start()
    held.wait_started(2)
    assert held.started[1] == ("r3", "connection")

    # THEN once the ledger answers, every record is written
    held.release.set()
    caller.join(WAIT)
    assert writer.wait_idle(WAIT)
    assert sorted(r for r, *_ in held.written) == ["r1", "r2", "r3"]


def test_drain_writes_everything_queued(held: HeldLedger, log_file: Path) -> None:
    writer = BackgroundLedger(held, workers=2)
    for n in range(20):
        writer.record(usage(f"r{n}"))
    held.release.set()
    assert writer.drain(WAIT) == 0
    assert sorted(r for r, *_ in held.written) == sorted(f"r{n}" for n in range(20))
    assert "usage_write_failed" not in log_file.read_text()


def test_drain_timeout_logs_every_unwritten_record_for_replay(
    held: HeldLedger, log_file: Path
) -> None:
    # GIVEN a ledger that answers nothing: one record being written, two queued
    writer = BackgroundLedger(held, workers=1)
    for n, reserved in enumerate(("0.25", "0", "1.5")):
        writer.record(usage(f"r{n}"), Reservation("key_1", "2026-12", f"r{n}", Decimal(reserved)))
    held.wait_started(1)

    # WHEN the drain's time is up
    logged = writer.drain(0.05)

    # THEN all three are in the log as lines `usage replay` reads, reservations included
    assert logged == 3
    found = [f for f in read([str(log_file)]) if isinstance(f, FailedWrite)]
    replayable = {f.item["request_id"]: f.reservation for f in found}
    assert {r: h.usd if h else None for r, h in replayable.items()} == {
        "r0": Decimal("0.25"),
        "r1": Decimal("0"),
        "r2": Decimal("1.5"),
    }
    assert {r: h.hold if h else None for r, h in replayable.items()} == {
        "r0": "r0",
        "r1": "r1",
        "r2": "r2",
    }
    assert held.written == []


def test_records_after_a_drain_are_written_inline(held: HeldLedger) -> None:
    writer = BackgroundLedger(held, workers=1)
    held.release.set()
    writer.drain(WAIT)
    writer.record(usage("late"))
    assert held.started[-1] == ("late", threading.current_thread().name)
    assert held.written[-1][0] == "late"
