"""Work the client does not wait for: giving back a reservation whose admission write had an
unknown outcome, and sweeping expired holds (docs/decisions/0006).

One daemon thread per process, started on first use (nothing runs at import time). Every task is
idempotent and bounded by DynamoDB's own timeouts, so a task may be dropped: one named like a task
still queued (the same sweep asked for twice), and any beyond `limit` queued tasks (DynamoDB is
down; the holds expire and a later admission triggers the sweep again). In Lambda the thread is
frozen between invocations and goes on with the next one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from mantle_gateway.observability import logger

Task = Callable[[], None]


class OffPath:
    def __init__(self, limit: int = 64) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._queued: set[str] = set()
        self._tasks: queue.Queue[tuple[str, Task]] = queue.Queue()
        self._thread: threading.Thread | None = None

    def submit(self, name: str, task: Task) -> bool:
        """Queue `task` unless one of that name is queued or too many are; True when queued."""
        with self._lock:
            if name in self._queued or len(self._queued) >= self._limit:
                return False
            self._queued.add(name)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="offpath", daemon=True)
                self._thread.start()
        self._tasks.put((name, task))
        return True

    def _work(self) -> None:
        while True:
            name, task = self._tasks.get()
            try:
                task()
            except Exception:
                logger.exception("offpath_task_failed", extra={"task": name})
            finally:
                with self._lock:
                    self._queued.discard(name)
