"""Usage writes off the local door's connections: a bounded queue and a couple of worker threads.

The local door closes an answer, which records its usage, on the connection's thread: written
inline, a keep-alive client's next request would wait for the previous one's DynamoDB
transaction. This writer takes the record and returns; its workers write it with the same
`Ledger` (same transaction, retries, replayable log line on failure). The queue is bounded: when
it is full the record is written inline, on the caller's thread (back-pressure, never a drop).

`record()`'s arguments after the usage record (what to settle) are kept as given and passed on,
so this writer does not depend on them. `drain()` at shutdown stops queueing, waits up to a time
limit for what is queued and being written, then has the ledger log everything left
(`Ledger.log_unwritten`: its own `usage_write_failed` line), which `mantle-gateway usage replay`
writes later (an item both logged and written by a late worker is
written once: the usage item's put is conditional). Only the local door uses it: a Lambda
invocation writes before it ends, since nothing of it runs afterwards.

`record()` answers True once a record is queued: the caller cannot wait for the outcome without
losing what this is for, and the outcome is safe either way (written, or logged for replay).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from mantle_gateway.observability import logger
from mantle_gateway.usage import UsageRecord


class _Ledger(Protocol):
    """`store.ledger.Ledger`: the write, and the line that keeps a record it could not write."""

    def record(self, record: UsageRecord, *args: Any, **kwargs: Any) -> bool: ...

    def log_unwritten(self, record: UsageRecord, *args: Any, **kwargs: Any) -> None:
        """Called with the record's own arguments and `error=`."""


@dataclass(frozen=True, slots=True, eq=False)
class _Job:
    """One `record()` call, its arguments kept as given (the ledger's own, e.g. what to settle)."""

    record: UsageRecord
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class BackgroundLedger:
    def __init__(self, ledger: _Ledger, *, capacity: int = 1024, workers: int = 2) -> None:
        self._ledger = ledger
        self._capacity = capacity
        self._queue: deque[_Job] = deque()
        self._writing: set[_Job] = set()
        self._draining = False
        self._changed = threading.Condition()
        for number in range(workers):
            threading.Thread(target=self._work, name=f"usage-writer-{number}", daemon=True).start()

    def record(self, record: UsageRecord, *args: Any, **kwargs: Any) -> bool:
        """Queue the ledger's `record(record, *args, **kwargs)`; True once queued."""
        with self._changed:
            queued = not self._draining and len(self._queue) < self._capacity
            if queued:
                self._queue.append(_Job(record, args, kwargs))
                self._changed.notify_all()
        if queued:
            return True
        return self._ledger.record(record, *args, **kwargs)

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
            self._give_up(job, "not written before shutdown")
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
                self._ledger.record(job.record, *job.args, **job.kwargs)
            except Exception as exc:  # the ledger logs its own failures; this is a bug's net
                logger.exception("usage_writer_failed")
                self._give_up(job, type(exc).__name__)
            finally:
                with self._changed:
                    self._writing.discard(job)
                    self._changed.notify_all()

    def _give_up(self, job: _Job, error: str) -> None:
        self._ledger.log_unwritten(job.record, *job.args, error=error, **job.kwargs)
