"""Stored responses: what `GET|DELETE /responses/{id}`, `…/cancel` and `…/input_items` read.

Mantle keeps a response (and its input) unless the request said `store: false`; the gateway must
relay those calls and check that only the key which created a response reaches it, so the
simulator keeps them in memory, per simulator instance, safe across handler threads.

Bounded, because `serve --upstream simulator` may run for days under an agent that stores every
turn: at most `max_items` responses and `max_bytes` of their JSON, the oldest dropped first (a
dropped id answers 404, as an expired one would). Each is kept as its JSON text: a reader gets
fresh objects, and the bytes bound is exact.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

MAX_STORED_RESPONSES = 1_000
MAX_STORED_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response: JSON
    input_items: list[JSON]


class ResponseStore:
    """A lock-guarded, insertion-ordered map of response id → the response and its input as
    JSON text; readers get fresh copies."""

    def __init__(
        self, max_items: int = MAX_STORED_RESPONSES, max_bytes: int = MAX_STORED_BYTES
    ) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._bytes = 0

    def put(self, response: JSON, input_items: list[JSON]) -> None:
        stored = (json.dumps(response), json.dumps(input_items))
        with self._lock:
            self._drop(response["id"])
            self._items[response["id"]] = stored
            self._bytes += _size(stored)
            while len(self._items) > 1 and (
                len(self._items) > self.max_items or self._bytes > self.max_bytes
            ):
                self._drop(next(iter(self._items)))

    def get(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            found = self._items.get(response_id)
        if found is None:
            return None
        return StoredResponse(json.loads(found[0]), json.loads(found[1]))

    def delete(self, response_id: str) -> bool:
        with self._lock:
            return self._drop(response_id)

    def set_status(self, response_id: str, status: str) -> JSON | None:
        """Change a stored response's status; return its new state, or None if unknown."""
        with self._lock:
            found = self._items.get(response_id)
            if found is None:
                return None
            response: JSON = json.loads(found[0])
            response["status"] = status
            changed = (json.dumps(response), found[1])
            self._items[response_id] = changed
            self._bytes += _size(changed) - _size(found)
            return response

    def ids(self) -> list[str]:
        """Oldest first."""
        with self._lock:
            return list(self._items)

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def _drop(self, response_id: str) -> bool:
        found = self._items.pop(response_id, None)
        if found is None:
            return False
        self._bytes -= _size(found)
        return True


def _size(stored: tuple[str, str]) -> int:
    return len(stored[0]) + len(stored[1])
