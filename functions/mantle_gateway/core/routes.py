"""The HTTP surface of DESIGN §3: the OpenAI family under both `/openai/v1` and `/v1`, the
Anthropic Messages family under `/anthropic/v1`.

A route names what the request is (its `kind`), which API family speaks it, which surface it
bills to, and the path it takes upstream once a prefix is chosen. Unknown path → 404, known path
with another method → 405 (with `Allow`), a family's passthrough flag off → 404 for every path of
that family, as if it did not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mantle_gateway.errors import MethodNotAllowedError, NotFoundError

CLIENT_PREFIXES = ("/openai/v1", "/v1")
ANTHROPIC_PREFIX = "/anthropic/v1"
"""Clients use base URL `<gateway>/anthropic`; the SDKs and Claude Code add `/v1/messages`."""
RESPONSE_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")
_RESPONSE_ID = rf"(?P<id>{RESPONSE_ID.pattern})"


@dataclass(frozen=True, slots=True)
class Route:
    kind: str
    """chat | responses | response_get | response_delete | response_cancel | input_items |
    models | health (OpenAI family); messages | count_tokens (Anthropic family)"""
    upstream_path: str = ""
    """Path below the upstream prefix, e.g. "/chat/completions"."""
    response_id: str | None = None
    family: str = "openai"
    """openai | anthropic: which API the client speaks, so which `Family` serves the route."""

    @property
    def billable(self) -> bool:
        return self.kind in _SURFACES

    @property
    def reads_body(self) -> bool:
        """The body is parsed and its model checked against the key (billed or not)."""
        return self.billable or self.kind == "count_tokens"

    @property
    def surface(self) -> str | None:
        """The `api_surface` a usage item records (DESIGN §5)."""
        return _SURFACES.get(self.kind)

    @property
    def owned_response(self) -> bool:
        return self.response_id is not None


_SURFACES = {"chat": "chat_completions", "responses": "responses", "messages": "messages"}


_TABLE: tuple[tuple[re.Pattern[str], dict[str, str]], ...] = (
    (re.compile(r"/chat/completions"), {"POST": "chat"}),
    (re.compile(r"/responses"), {"POST": "responses"}),
    (
        re.compile(rf"/responses/{_RESPONSE_ID}"),
        {"GET": "response_get", "DELETE": "response_delete"},
    ),
    (re.compile(rf"/responses/{_RESPONSE_ID}/cancel"), {"POST": "response_cancel"}),
    (re.compile(rf"/responses/{_RESPONSE_ID}/input_items"), {"GET": "input_items"}),
    (re.compile(r"/models"), {"GET": "models"}),
)
_ANTHROPIC_TABLE: tuple[tuple[re.Pattern[str], dict[str, str]], ...] = (
    (re.compile(r"/messages"), {"POST": "messages"}),
    (re.compile(r"/messages/count_tokens"), {"POST": "count_tokens"}),
)


def match(
    method: str, path: str, *, passthrough_enabled: bool, anthropic_enabled: bool = True
) -> Route:
    """`passthrough_enabled`: the OpenAI family's flag; `anthropic_enabled`: the Anthropic one."""
    if path == "/health":
        if method in ("GET", "HEAD"):
            return Route("health")
        raise MethodNotAllowedError(f"{method} is not allowed on /health", headers={"allow": "GET"})
    family, table, enabled = "openai", _TABLE, passthrough_enabled
    rest = _strip_prefix(path, CLIENT_PREFIXES)
    if rest is None:
        family, table, enabled = "anthropic", _ANTHROPIC_TABLE, anthropic_enabled
        rest = _strip_prefix(path, (ANTHROPIC_PREFIX,))
    if rest is None or not enabled:
        raise NotFoundError(f"Unknown path: {method} {_printable(path)}")
    for pattern, methods in table:
        found = pattern.fullmatch(rest)
        if found is None:
            continue
        kind = methods.get(method)
        if kind is None:
            allowed = ", ".join(sorted(methods))
            raise MethodNotAllowedError(
                f"{method} is not allowed on {_printable(path)}", headers={"allow": allowed}
            )
        groups = found.groupdict()
        return Route(kind, rest, groups.get("id"), family)
    raise NotFoundError(f"Unknown path: {method} {_printable(path)}")


def _strip_prefix(path: str, prefixes: tuple[str, ...]) -> str | None:
    for prefix in prefixes:
        if path.startswith(prefix + "/"):
            return path[len(prefix) :].rstrip("/") or None
    return None


def _printable(path: str) -> str:
    """Echo a path back without control characters or unbounded length."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in path[:200])
    return cleaned + ("…" if len(path) > 200 else "")
