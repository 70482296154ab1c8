"""The Anthropic family: Messages and its `count_tokens`, under `/anthropic/v1` (DESIGN §3).

Clients (the Anthropic SDKs, Claude Code) take base URL `<gateway>/anthropic`. Mantle serves the
surface at `/anthropic/v1/messages` and requires `anthropic-version` (Bedrock user guide,
"Inference using Anthropic Messages API"), so the gateway sends `2023-06-01` when a client sent
none; `anthropic-beta` and `anthropic-workspace-id` (Mantle's project on this surface) go up as
sent. Usage counts the prompt cache apart from `input_tokens` (`usage.from_messages_usage` adds
it back); rate limits are `anthropic-ratelimit-*` headers with RFC 3339 reset times, as
Anthropic's API sends them ("Rate limits" page of its docs).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mantle_gateway.core import guard_text
from mantle_gateway.stream.anthropic_events import MessagesEvents
from mantle_gateway.upstream import signing
from mantle_gateway.usage import TokenCounts, from_messages_usage

if TYPE_CHECKING:
    from mantle_gateway.core.call import Call
    from mantle_gateway.core.guard_text import Slot
    from mantle_gateway.core.routes import Route
    from mantle_gateway.store.limits import RateState

PREFIX = "/anthropic/v1"
VERSION = "2023-06-01"
HEADERS = frozenset({"anthropic-version", "anthropic-beta", "anthropic-workspace-id"})


class AnthropicFamily:
    stream_reader = MessagesEvents

    def forwarded_headers(self, client_headers: Mapping[str, str]) -> dict[str, str]:
        headers = signing.forwarded_headers(client_headers, HEADERS)
        if not headers.get("anthropic-version"):
            headers["anthropic-version"] = VERSION
        return headers

    def upstream_body(self, call: Call) -> tuple[bytes, bool]:
        return call.request.body, False

    def prefix_for(self, model: str) -> str:
        return PREFIX

    def retry_prefix(self, call: Call, status: int, content: bytes) -> str | None:
        return None  # one path for every Claude model

    def prefix_answered(self, call: Call) -> None:
        """Never called: there is no other prefix to retry on."""

    def usage(self, route: Route, answer: Mapping[str, Any]) -> TokenCounts | None:
        return from_messages_usage(answer.get("usage"))

    def input_slots(self, route: Route, data: dict[str, Any]) -> list[Slot]:
        return guard_text.messages_input(data)

    def output_slots(self, route: Route, answer: dict[str, Any]) -> list[Slot]:
        return guard_text.messages_output(answer)

    def mark_filtered(self, route: Route, answer: dict[str, Any]) -> None:
        guard_text.messages_filtered(answer)

    def rate_headers(self, rate: RateState, now: datetime) -> list[tuple[str, str]]:
        reset = (now.replace(microsecond=0) + timedelta(seconds=rate.reset_seconds)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        out: list[tuple[str, str]] = []
        for kind, limit, used in (
            ("requests", rate.rpm, rate.requests),
            ("tokens", rate.tpm, rate.tokens),
        ):
            if limit is not None:
                out += [
                    (f"anthropic-ratelimit-{kind}-limit", str(limit)),
                    (f"anthropic-ratelimit-{kind}-remaining", str(max(0, limit - used))),
                    (f"anthropic-ratelimit-{kind}-reset", reset),
                ]
        return out
