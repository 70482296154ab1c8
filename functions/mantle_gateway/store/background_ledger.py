"""Usage writes off the local door's connections: a bounded queue and a couple of worker threads.

The local door closes an answer, which records its usage, on the connection's thread: written
inline, a keep-alive client's next request would wait for the previous one's DynamoDB
transaction. This writer takes the record and returns; its workers write it with the same
`Ledger` (same transaction, retries, replayable log line on failure). The queue is bounded: when
it is full the record is written inline, on the caller's thread (back-pressure, never a drop).

`drain()` at shutdown stops queueing, waits up to a time limit for what is queued and being
written, then logs everything left as `usage_write_failed` lines, the ledger's own format, which
`mantle-gateway usage replay` writes later (an item both logged and written by a late worker is
written once: the usage item's put is conditional). Only the local door uses it: a Lambda
invocation writes before it ends, since nothing of it runs afterwards.

`record()` answers True once a record is queued: the caller cannot wait for the outcome without
losing what this is for, and the outcome is safe either way (written, or logged for replay).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from mantle_gateway.observability import logger
from mantle_gateway.store.ledger import log_unwritten
from mantle_gateway.usage import UsageRecord

_ZERO = Decimal(0)


class _Writes(Protocol):
    def record(
        self, record: UsageRecord, reserved: Decimal = ..., *, charge_window: bool = ...
    ) -> bool: ...


@dataclass(frozen=True, slots=True, eq=False)
class _Job:
    record: UsageRecord
    reserved: Decimal
    charge_window: bool


class BackgroundLedger:
    def __init__(self, ledger: _Writes, *, capacity: int = 1024, workers: int = 2) -> None:
        self._ledger = ledger
        self._capacity = capacity
        self._queue: deque[_Job] = deque()
        self._writing: set[_Job] = set()
        self._draining = False
        self._changed = threading.Condition()
        for number in range(workers):
            threading.Thread(target=self._work, name=f"usage-writer-{number}", daemon=True).start()

    def record(
        self, record: UsageRecord, reserved: Decimal = _ZERO, *, charge_window: bool = False
    ) -> bool:
        with self._changed:
            queued = not self._draining and len(self._queue) < self._capacity
            if queued:
                self._queue.append(_Job(record, reserved, charge_window))
                self._changed.notify_all()
        if queued:
            return True
        return self._ledger.record(record, reserved, charge_window=charge_window)

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is queued or being written (within `timeout` seconds)."""
        with self._changed:
            return self._changed.wait_for(self._idle, timeout)

    def drain(self, timeout: float) -> int:
        """Write what is queued for up to `timeout` seconds, then log what is left for replay;
        how many records were logged. Records arriving from now on are written inline."""
        with self._changed:
            self._draining = True
            if self._changed.wait_for(self._idle, timeout):
                return 0
            left = [*self._writing, *self._queue]
            self._queue.clear()
        for job in left:
            log_unwritten(job.record.item(), job.reserved, "not written before shutdown")
        return len(left)

    def _idle(self) -> bool:
        return not self._queue and not self._writing

    def _work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._queue))
                job = self._queue.popleft()
                self._writing.add(job)
            try:
                self._ledger.record(job.record, job.reserved, charge_window=job.charge_window)
            except Exception as exc:  # the ledger logs its own failures; this is a bug's net
                logger.exception("usage_writer_failed")
                log_unwritten(job.record.item(), job.reserved, type(exc).__name__)
            finally:
                with self._changed:
                    self._writing.discard(job)
                    self._changed.notify_all()
