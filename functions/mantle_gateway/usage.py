"""The usage record of DESIGN §5: what one billable request used, and the item finance reads.

Value types shared by `stream/` (reads usage from events), `store/` (writes the item) and `core/`
(prices it), so they sit below all three.

Sparse attributes are absent, never zero or empty: `api_surface` is written only by the
passthrough surfaces, `reasoning_tokens` and `cache_write_tokens` only when non-zero, `estimated`
only when the upstream never reported usage (a client that disconnects early is still billed for
what it received) or reported numbers no bill can carry (`InvalidUsage`), `project` only when
the request named a Mantle project upstream.
"""

from __future__ import annotations

import json
import math
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


MAX_TOKENS_PER_COUNT = 100_000_000
"""The largest token count one request can report (10^8). The longest contexts Mantle's models
take are about 10^6 tokens and no answer writes more than 10^7 (`pricing.MAX_OUTPUT_TOKENS`), so
no real usage comes near it, while a count above it (1e45 once wrote a cost of 1.5e38 USD) is an
upstream fault. It bounds one request's cost to 10^8 input and 10^8 output tokens at the model's
prices ($3,850 at gpt-5.5's), and keeps every count and sum exact in DynamoDB and the report."""


class InvalidUsage(ValueError):
    """Upstream usage whose numbers cannot be billed: not integers (NaN, Infinity, 1.5, "7",
    true), negative, above `MAX_TOKENS_PER_COUNT`, or a main count missing. The caller treats
    the usage as missing (the record is estimated) and raises the alarm."""


def from_chat_usage(usage: Any) -> TokenCounts | None:
    """Chat Completions `usage`: prompt/completion tokens and their details; None when absent."""
    if usage is None:
        return None
    if not isinstance(usage, dict):
        raise InvalidUsage("usage is not an object")
    return TokenCounts(
        input=_count(usage.get("prompt_tokens")),
        output=_count(usage.get("completion_tokens")),
        cached=_count(_detail(usage, "prompt_tokens_details", "cached_tokens"), optional=True),
        reasoning=_count(
            _detail(usage, "completion_tokens_details", "reasoning_tokens"), optional=True
        ),
    )


def from_responses_usage(usage: Any) -> TokenCounts | None:
    """Responses `usage`: input/output tokens and their details; None when absent."""
    if usage is None:
        return None
    if not isinstance(usage, dict):
        raise InvalidUsage("usage is not an object")
    return TokenCounts(
        input=_count(usage.get("input_tokens")),
        output=_count(usage.get("output_tokens")),
        cached=_count(_detail(usage, "input_tokens_details", "cached_tokens"), optional=True),
        reasoning=_count(
            _detail(usage, "output_tokens_details", "reasoning_tokens"), optional=True
        ),
    )


def from_messages_usage(usage: Any) -> TokenCounts | None:
    """Anthropic Messages `usage`: its `input_tokens` leave out the prompt-cache reads and
    writes, which are counted back in here, so `input` is every input token as OpenAI counts
    prompt tokens, with the cached and cache-written parts inside it. The output count may be
    absent at a stream's start (`message_start`); the reader marks that usage estimated."""
    if usage is None:
        return None
    if not isinstance(usage, dict):
        raise InvalidUsage("usage is not an object")
    read = _count(usage.get("cache_read_input_tokens"), optional=True)
    written = _count(usage.get("cache_creation_input_tokens"), optional=True)
    return TokenCounts(
        input=_count(usage.get("input_tokens")) + read + written,
        output=_count(usage.get("output_tokens"), optional=True),
        cached=read,
        cache_write=written,
    )


def _detail(usage: dict[str, Any], group: str, name: str) -> Any:
    details = usage.get(group)
    if details is None:
        return None
    if not isinstance(details, dict):
        raise InvalidUsage(f"{group} is not an object")
    return details.get(name)


def _count(value: Any, *, optional: bool = False) -> int:
    """A JSON integer in 0…MAX_TOKENS_PER_COUNT; an absent detail counts 0."""
    if value is None and optional:
        return 0
    if type(value) is not int or not 0 <= value <= MAX_TOKENS_PER_COUNT:
        raise InvalidUsage("a usage count is not an integer in range")
    return value


def parse_upstream_json(data: bytes) -> dict[str, Any] | None:
    """An upstream answer or event as a JSON object; None when it is not one.

    Never raises: a body too deep for the parser, or an integer too long for Python to convert
    (over 4,300 digits is a ValueError since 3.11), must not break an answer that is relayed
    anyway. Such integers parse as infinity (on a second try only, so the relay's per-event
    parse pays nothing), NaN and Infinity as floats: the usage check refuses them as
    non-integers, so they can never become a count. Every other value parses as `json` always
    did (the relay may write the object back)."""
    try:
        value = json.loads(data)
    except ValueError:
        try:
            value = json.loads(data, parse_int=_bounded_int)
        except (ValueError, RecursionError):
            return None
    except RecursionError:
        return None
    return value if isinstance(value, dict) else None


def _bounded_int(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:  # more digits than sys.get_int_max_str_digits()
        return math.inf


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
