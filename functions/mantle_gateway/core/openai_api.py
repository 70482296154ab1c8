"""The OpenAI family: Chat Completions, Responses and their stored-response CRUD, under
`/openai/v1` and `/v1` (DESIGN §3, §4).

What sets it apart: Mantle serves each model under one of two prefixes (learned from its route
error), a streamed chat is asked for the usage chunk the client may not have requested, and
rate limits are `x-ratelimit-*` headers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mantle_gateway.core import guard_text
from mantle_gateway.upstream import routing, signing
from mantle_gateway.usage import TokenCounts, from_chat_usage, from_responses_usage

if TYPE_CHECKING:
    from mantle_gateway.core.call import Call
    from mantle_gateway.core.guard_text import Slot
    from mantle_gateway.core.routes import Route
    from mantle_gateway.store.limits import RateState


class OpenAIFamily:
    stream_reader = None
    """Chat and Responses streams are read by the relay itself."""

    def __init__(self, router: routing.PrefixRouter) -> None:
        self._router = router

    def forwarded_headers(self, client_headers: Mapping[str, str]) -> dict[str, str]:
        return signing.forwarded_headers(client_headers, signing.OPENAI_HEADERS)

    def upstream_body(self, call: Call) -> tuple[bytes, bool]:
        """Chat streams are asked for usage the client did not request (DESIGN §5)."""
        parsed = call.parsed
        if parsed is None or call.route.kind != "chat" or not parsed.stream:
            return call.request.body, False
        options = parsed.data.get("stream_options")
        if options is None:
            options = {}
        if not isinstance(options, dict) or options.get("include_usage") is True:
            return call.request.body, False
        data = dict(parsed.data)
        data["stream_options"] = {**options, "include_usage": True}
        return json.dumps(data, separators=(",", ":")).encode(), True

    def prefix_for(self, model: str) -> str:
        return self._router.prefix_for(model)

    def retry_prefix(self, call: Call, status: int, content: bytes) -> str | None:
        """Mantle serves this model under the other prefix: retry once on it."""
        if call.parsed is None or not routing.is_route_error(status, content):
            return None
        return routing.other_prefix(call.prefix)

    def prefix_answered(self, call: Call) -> None:
        if call.parsed is not None:
            self._router.learn(call.parsed.model, call.prefix)

    def usage(self, route: Route, answer: Mapping[str, Any]) -> TokenCounts | None:
        usage = answer.get("usage")
        return from_chat_usage(usage) if route.kind == "chat" else from_responses_usage(usage)

    def rate_headers(self, rate: RateState, now: datetime) -> list[tuple[str, str]]:
        return rate.headers()

    def input_slots(self, route: Route, data: dict[str, Any]) -> list[Slot]:
        chat = route.kind == "chat"
        return guard_text.chat_input(data) if chat else guard_text.responses_input(data)

    def output_slots(self, route: Route, answer: dict[str, Any]) -> list[Slot]:
        chat = route.kind == "chat"
        return guard_text.chat_output(answer) if chat else guard_text.responses_output(answer)

    def mark_filtered(self, route: Route, answer: dict[str, Any]) -> None:
        if route.kind == "chat":
            guard_text.chat_filtered(answer)
        else:
            guard_text.responses_filtered(answer)
