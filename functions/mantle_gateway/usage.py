"""The usage record of DESIGN §5: what one billable request used, and the item finance reads.

Value types shared by `stream/` (reads usage from events), `store/` (writes the item) and `core/`
(prices it), so they sit below all three.

Sparse attributes are absent, never zero or empty: `api_surface` is written only by the
passthrough surfaces, `reasoning_tokens` and `cache_write_tokens` only when non-zero, `estimated`
only when the upstream never reported usage (a client that disconnects early is still billed for
what it received), `project` only when the request named a Mantle project upstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mantle_gateway import schema


@dataclass(frozen=True, slots=True)
class TokenCounts:
    input: int = 0
    output: int = 0
    cached: int = 0
    """Input tokens read from a prompt cache (inside `input`)."""
    reasoning: int = 0
    """Output tokens spent reasoning (inside `output`)."""
    cache_write: int = 0
    """Input tokens written to a prompt cache (inside `input`; Anthropic Messages only)."""

    @property
    def total(self) -> int:
        return self.input + self.output


def from_chat_usage(usage: Any) -> TokenCounts | None:
    """Chat Completions `usage`: prompt/completion tokens and their details."""
    if not isinstance(usage, dict):
        return None
    return TokenCounts(
        input=_int(usage.get("prompt_tokens")),
        output=_int(usage.get("completion_tokens")),
        cached=_int(_detail(usage, "prompt_tokens_details", "cached_tokens")),
        reasoning=_int(_detail(usage, "completion_tokens_details", "reasoning_tokens")),
    )


def from_responses_usage(usage: Any) -> TokenCounts | None:
    """Responses `usage`: input/output tokens and their details."""
    if not isinstance(usage, dict):
        return None
    return TokenCounts(
        input=_int(usage.get("input_tokens")),
        output=_int(usage.get("output_tokens")),
        cached=_int(_detail(usage, "input_tokens_details", "cached_tokens")),
        reasoning=_int(_detail(usage, "output_tokens_details", "reasoning_tokens")),
    )


def from_messages_usage(usage: Any) -> TokenCounts | None:
    """Anthropic Messages `usage`: its `input_tokens` leave out the prompt-cache reads and
    writes, which are counted back in here, so `input` is every input token as OpenAI counts
    prompt tokens, with the cached and cache-written parts inside it."""
    if not isinstance(usage, dict):
        return None
    read = _int(usage.get("cache_read_input_tokens"))
    written = _int(usage.get("cache_creation_input_tokens"))
    return TokenCounts(
        input=_int(usage.get("input_tokens")) + read + written,
        output=_int(usage.get("output_tokens")),
        cached=read,
        cache_write=written,
    )


def _detail(usage: dict[str, Any], group: str, name: str) -> Any:
    details = usage.get(group)
    return details.get(name) if isinstance(details, dict) else None


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(0, int(value))


@dataclass(frozen=True, slots=True)
class UsageRecord:
    request_id: str
    timestamp: str
    """ISO 8601 UTC with microseconds, e.g. 2026-11-24T09:30:00.123456Z."""
    key_id: str
    model: str
    tokens: TokenCounts
    cost_usd: Decimal
    status: str
    """ok | incomplete | guardrail_blocked"""
    latency_ms: int
    door: str
    stream: bool
    api_surface: str | None = None
    outcome: str | None = None
    """Why a record is incomplete: client_disconnected, upstream_dropped, deadline, …"""
    estimated: bool = False
    upstream_status: int = 200
    response_id: str | None = None
    project: str | None = None
    """The Mantle project named upstream (`OpenAI-Project`); absent: the account's default."""
    guardrail: str | None = None
    """`ID:VERSION` of the guardrail the gateway enforced (docs/decisions/0011)."""
    guardrail_action: str | None = None
    """none | intervened"""
    guardrail_text_units: int = 0
    guardrail_cost_usd: Decimal | None = None
    """Inside `cost_usd`, which is what the budget counts."""

    @property
    def month(self) -> str:
        return self.timestamp[:7]

    def item(self) -> dict[str, Any]:
        """Plain values of the DynamoDB item (see `schema` for the key layout)."""
        values: dict[str, Any] = {
            schema.USAGE_PK: f"{self.key_id}#{self.month}",
            schema.USAGE_SK: f"{self.timestamp}#{self.request_id}",
            schema.USAGE_MONTH_ATTR: self.month,
            "request_id": self.request_id,
            "timestamp": self.timestamp,
            "key_id": self.key_id,
            "model": self.model,
            "input_tokens": self.tokens.input,
            "output_tokens": self.tokens.output,
            "cached_tokens": self.tokens.cached,
            "total_tokens": self.tokens.total,
            "cost_usd": self.cost_usd,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "door": self.door,
            "stream": self.stream,
            "upstream_status": self.upstream_status,
        }
        if self.api_surface:
            values["api_surface"] = self.api_surface
        if self.tokens.reasoning:
            values["reasoning_tokens"] = self.tokens.reasoning
        if self.tokens.cache_write:
            values["cache_write_tokens"] = self.tokens.cache_write
        if self.outcome:
            values["outcome"] = self.outcome
        if self.estimated:
            values["estimated"] = True
        if self.response_id:
            values["response_id"] = self.response_id
        if self.project:
            values["project"] = self.project
        if self.guardrail:
            values["guardrail"] = self.guardrail
            values["guardrail_action"] = self.guardrail_action
        if self.guardrail_text_units:
            values["guardrail_text_units"] = self.guardrail_text_units
        if self.guardrail_cost_usd:
            values["guardrail_cost_usd"] = self.guardrail_cost_usd
        return values
