"""Stored responses: what `GET|DELETE /responses/{id}`, `…/cancel` and `…/input_items` read.

Mantle keeps a response (and its input) unless the request said `store: false`; the gateway must
relay those calls and check that only the key which created a response reaches it, so the
simulator keeps them in memory, per simulator instance, safe across handler threads.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response: JSON
    input_items: list[JSON]


class ResponseStore:
    """A lock-guarded dict of response id → stored response; readers get deep copies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, StoredResponse] = {}

    def put(self, response: JSON, input_items: list[JSON]) -> None:
        with self._lock:
            self._items[response["id"]] = StoredResponse(
                copy.deepcopy(response), copy.deepcopy(input_items)
            )

    def get(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            found = self._items.get(response_id)
            return copy.deepcopy(found) if found is not None else None

    def delete(self, response_id: str) -> bool:
        with self._lock:
            return self._items.pop(response_id, None) is not None

    def set_status(self, response_id: str, status: str) -> JSON | None:
        """Change a stored response's status; return its new state, or None if unknown."""
        with self._lock:
            found = self._items.get(response_id)
            if found is None:
                return None
            found.response["status"] = status
            return copy.deepcopy(found.response)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
