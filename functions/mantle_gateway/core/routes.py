"""The HTTP surface of DESIGN §3, under both `/openai/v1` and `/v1`.

A route names what the request is (its `kind`), which surface it bills to, and the path it takes
upstream once a prefix is chosen. Unknown path → 404, known path with another method → 405 (with
`Allow`), passthrough flag off → 404 for every passthrough path, as if it did not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mantle_gateway.errors import MethodNotAllowedError, NotFoundError

CLIENT_PREFIXES = ("/openai/v1", "/v1")
RESPONSE_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")
_RESPONSE_ID = rf"(?P<id>{RESPONSE_ID.pattern})"


@dataclass(frozen=True, slots=True)
class Route:
    kind: str
    """chat | responses | response_get | response_delete | response_cancel | input_items |
    models | health"""
    upstream_path: str = ""
    """Path below the upstream prefix, e.g. "/chat/completions"."""
    response_id: str | None = None

    @property
    def billable(self) -> bool:
        return self.kind in ("chat", "responses")

    @property
    def surface(self) -> str | None:
        """The `api_surface` a usage item records (DESIGN §5)."""
        return {"chat": "chat_completions", "responses": "responses"}.get(self.kind)

    @property
    def owned_response(self) -> bool:
        return self.response_id is not None


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


def match(method: str, path: str, *, passthrough_enabled: bool) -> Route:
    if path == "/health":
        if method in ("GET", "HEAD"):
            return Route("health")
        raise MethodNotAllowedError(f"{method} is not allowed on /health", headers={"allow": "GET"})
    rest = _strip_prefix(path)
    if rest is None or not passthrough_enabled:
        raise NotFoundError(f"Unknown path: {method} {_printable(path)}")
    for pattern, methods in _TABLE:
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
        return Route(kind, rest, groups.get("id"))
    raise NotFoundError(f"Unknown path: {method} {_printable(path)}")


def _strip_prefix(path: str) -> str | None:
    for prefix in CLIENT_PREFIXES:
        if path.startswith(prefix + "/"):
            return path[len(prefix) :].rstrip("/") or None
    return None


def _printable(path: str) -> str:
    """Echo a path back without control characters or unbounded length."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in path[:200])
    return cleaned + ("…" if len(path) > 200 else "")
