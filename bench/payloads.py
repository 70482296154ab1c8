"""The requests and canned answers every measure uses, built from the simulator's own formats.

Using `mantle_gateway.simulator.formats` for the canned upstream bytes keeps the in-process
measures (CPU per request, relay without network) on exactly the shapes the simulator sends.
"""

from __future__ import annotations

import json

from mantle_gateway.simulator import formats

MODEL = "openai.gpt-oss-120b"
"""Served under `/v1` by Mantle's rule, so direct calls and the gateway use the same path."""
CHAT_PATH = "/v1/chat/completions"
GATEWAY_CHAT_PATH = "/openai/v1/chat/completions"
NON_STREAM_TOKENS = 16
"""Answer length of the latency requests: a short completion, like most API calls."""
MESSAGES_MODEL = "anthropic.claude-haiku-4-5"
MESSAGES_PATH = "/anthropic/v1/messages"
GATEWAY_MESSAGES_PATH = "/anthropic/v1/messages"
MESSAGES_HEADERS = {"anthropic-version": "2023-06-01"}
"""Sent by the client on both sides (the gateway forwards it; the simulator requires it)."""
MESSAGES_PRICE = {"input": 1.0, "output": 5.0, "cached": 0.1, "cache_write": 1.25}
"""The bench gateway's PRICES_JSON entry for MESSAGES_MODEL, so it is priced like the chat
model (an unpriced model costs a warning log line per request)."""


def chat_body(max_tokens: int, *, stream: bool) -> bytes:
    """A chat request; streamed ones leave out `include_usage`, so the gateway injects it and
    strips the extra usage chunk (usage extraction fully on)."""
    body: dict[str, object] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
        "max_tokens": max_tokens,
    }
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def messages_body(max_tokens: int) -> bytes:
    """A streamed Anthropic Messages request, as Claude Code and the SDKs send one."""
    body = {
        "model": MESSAGES_MODEL,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
        "stream": True,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _usage(tokens: int) -> formats.Usage:
    return formats.Usage.of(prompt_words=5, answer_tokens=tokens, reasoning=0, cached=0)


def chat_completion_bytes(tokens: int = NON_STREAM_TOKENS) -> bytes:
    answer = formats.chat_completion("chatcmpl-bench", 1_700_000_000, MODEL, tokens, _usage(tokens))
    return formats.dumps(answer)


def chat_stream_events(tokens: int) -> list[bytes]:
    """The SSE frames of a streamed chat answer as the simulator sends them (usage included,
    because the gateway always asks for it)."""
    frames = formats.chat_stream(
        "chatcmpl-bench", 1_700_000_000, MODEL, tokens, _usage(tokens), include_usage=True
    )
    return list(frames)


def count_events(body: bytes) -> int:
    """Data events in an SSE body (`data: [DONE]` included): one blank line ends each."""
    return body.count(b"\n\n")
