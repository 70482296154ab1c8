"""Which operation a path names, and which path prefix Mantle serves a model under.

Mantle exposes the OpenAI surface twice, under `/v1` and `/openai/v1`, and serves each model on
only one of them (reference/mantle-facts.md §1.2). The gateway must pick the right prefix and
recover when it guesses wrong, so the simulator keeps the same kind of table and refuses a model
on the other prefix exactly as Mantle does. The Anthropic Messages surface lives under
`/anthropic/v1` with its own two operations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

ANTHROPIC_PREFIX = "/anthropic/v1"
PREFIXES = ("/openai/v1", "/v1", ANTHROPIC_PREFIX)
DEFAULT_PREFIX = "/v1"

DEFAULT_MODEL_PREFIXES: Mapping[str, str] = {
    "openai.gpt-5*": "/openai/v1",
    "openai.gpt-6*": "/openai/v1",
    "google.gemma-4*": "/openai/v1",
    "xai.grok*": "/openai/v1",
}
"""Glob → prefix; any model matching none of them is served under `/v1`."""


@dataclass(frozen=True, slots=True)
class Route:
    """An operation the simulator knows, found from a request path."""

    operation: str
    """One of: chat, create_response, get_response, delete_response, cancel_response,
    input_items, models; messages, count_tokens (under `/anthropic/v1`)."""
    prefix: str
    """`/v1`, `/openai/v1` or `/anthropic/v1`, as used by the caller."""
    response_id: str | None = None


# (path shape after the prefix, HTTP method) → operation; `{id}` is one path segment.
_TABLE: Mapping[tuple[str, str], str] = {
    ("/chat/completions", "POST"): "chat",
    ("/responses", "POST"): "create_response",
    ("/responses/{id}", "GET"): "get_response",
    ("/responses/{id}", "DELETE"): "delete_response",
    ("/responses/{id}/cancel", "POST"): "cancel_response",
    ("/responses/{id}/input_items", "GET"): "input_items",
    ("/models", "GET"): "models",
}
_ANTHROPIC_TABLE: Mapping[tuple[str, str], str] = {
    ("/messages", "POST"): "messages",
    ("/messages/count_tokens", "POST"): "count_tokens",
}


class MethodNotAllowed(Exception):
    """The path exists but not for this method; `allowed` lists the methods it takes."""

    def __init__(self, allowed: list[str]) -> None:
        super().__init__(", ".join(allowed))
        self.allowed = allowed


def split_prefix(path: str) -> tuple[str, str] | None:
    """(the prefix, rest of the path) or None when no known prefix starts it."""
    for prefix in PREFIXES:
        if path.startswith(prefix + "/"):
            return prefix, path[len(prefix) :]
    return None


def _shape(rest: str) -> tuple[str, str | None]:
    """Replace the response id segment by `{id}` so the table can be looked up."""
    parts = rest.split("/")
    # ["", "responses", ID, ...]
    if len(parts) >= 3 and parts[1] == "responses" and parts[2]:
        return "/".join([*parts[:2], "{id}", *parts[3:]]), parts[2]
    return rest, None


def match(method: str, path: str) -> Route | None:
    """The route for `method path`; None when unknown; `MethodNotAllowed` on a wrong method."""
    found = split_prefix(path)
    if found is None:
        return None
    prefix, rest = found
    table = _ANTHROPIC_TABLE if prefix == ANTHROPIC_PREFIX else _TABLE
    shape, response_id = _shape(rest) if table is _TABLE else (rest, None)
    operation = table.get((shape, method.upper()))
    if operation is not None:
        return Route(operation, prefix, response_id)
    allowed = sorted(m for (s, m) in table if s == shape)
    if allowed:
        raise MethodNotAllowed(allowed)
    return None


def prefix_for(model: str, table: Mapping[str, str]) -> str:
    """The prefix `model` is served under: an exact entry first, then globs, later ones winning.

    "Later ones winning" lets `sim.model_prefixes["acme.*"] = …` override a default glob.
    """
    exact = table.get(model)
    if exact is not None:
        return exact
    for pattern, prefix in reversed(list(table.items())):
        if fnmatchcase(model, pattern):
            return prefix
    return DEFAULT_PREFIX
