"""Model → upstream prefix (`/v1` or `/openai/v1`), learning from Mantle's route errors.

Mantle serves some models under `/v1` and others under `/openai/v1` and rejects the wrong one
with "model `x` isn't supported on this route" (reference/mantle-facts.md §1.2). Rules are tried
in order (deployment overrides first, then the defaults); when Mantle disagrees, the pipeline
retries once on the other prefix and the answer is remembered for this process.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

ROUTE_ERROR_MARK = b"supported on this route"


class PrefixRouter:
    def __init__(self, rules: Sequence[tuple[str, str]]) -> None:
        self._rules = tuple(rules)
        self._learned: dict[str, str] = {}

    def prefix_for(self, model: str) -> str:
        learned = self._learned.get(model)
        if learned is not None:
            return learned
        for pattern, prefix in self._rules:
            if fnmatchcase(model, pattern):
                return prefix
        return "/v1"

    def learn(self, model: str, prefix: str) -> None:
        if len(self._learned) < 1000:
            self._learned[model] = prefix


def other_prefix(prefix: str) -> str:
    return "/v1" if prefix == "/openai/v1" else "/openai/v1"


def is_route_error(status: int, body: bytes) -> bool:
    return status in (400, 404) and ROUTE_ERROR_MARK in body
