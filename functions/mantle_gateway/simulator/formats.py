"""The JSON and SSE shapes Mantle answers with, built deterministically and cheaply.

The official `openai` SDK must parse everything here, and the gateway's usage extraction must
see what Mantle really sends (reference/mantle-facts.md §5): data-only chat chunks ending with
`data: [DONE]`, a separate `choices: []` usage chunk only when `stream_options.include_usage`
is set, Responses events carrying `type` and `sequence_number`, and no `[DONE]` after
`response.completed`. Keys are sorted because Mantle's captured bodies are.

Answers are made of "tokens" `tok0 `, `tok1 `, …: one SSE event per token, so a request for
10,000 tokens measures how fast a relay moves 10,000 events. Stream frames are assembled from
pre-encoded byte templates so the simulator is never the bottleneck of such a measurement.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

_TEXT_KEYS = ("content", "text", "output", "input", "instructions")


def dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    """The OpenAI error envelope as Mantle writes it."""
    return dumps({"error": {"code": code, "message": message, "param": param, "type": type_}})


def token(index: int) -> str:
    return f"tok{index} "


def answer_text(count: int) -> str:
    return "".join(token(i) for i in range(count))


def count_words(value: object) -> int:
    """Whitespace-separated words in every text of a chat `messages` or Responses `input`."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(count_words(item) for item in value)
    if isinstance(value, dict):
        return sum(count_words(value[key]) for key in _TEXT_KEYS if key in value)
    return 0


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one answer; `output_tokens` includes `reasoning_tokens` as OpenAI's do."""

    input_tokens: int
    output_tokens: int
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    @classmethod
    def of(cls, prompt_words: int, answer_tokens: int, reasoning: int, cached: int) -> Usage:
        """Cached tokens are a part of the prompt, so the prompt is at least that long."""
        return cls(
            input_tokens=max(prompt_words, cached, 1),
            output_tokens=answer_tokens + reasoning,
            reasoning_tokens=reasoning,
            cached_tokens=cached,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def chat(self) -> JSON:
        """Chat Completions usage; detail objects only when non-zero (Mantle often omits them)."""
        out: JSON = {
            "completion_tokens": self.output_tokens,
            "prompt_tokens": self.input_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cached_tokens:
            out["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        if self.reasoning_tokens:
            out["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return out

    def responses(self) -> JSON:
        """Responses usage, details always present (what Codex's parser expects)."""
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.total_tokens,
        }


# --------------------------------------------------------------------------- chat completions


def chat_completion(completion_id: str, created: int, model: str, count: int, usage: Usage) -> JSON:
    return {
        "choices": [
            {
                "finish_reason": "stop",
                "index": 0,
                "logprobs": None,
                "message": {"content": answer_text(count), "role": "assistant"},
            }
        ],
        "created": created,
        "id": completion_id,
        "model": model,
        "object": "chat.completion",
        "usage": usage.chat(),
    }


def chat_stream(
    completion_id: str,
    created: int,
    model: str,
    count: int,
    usage: Usage,
    *,
    include_usage: bool,
) -> Iterator[bytes]:
    """The SSE frames of a streamed chat completion, `data: [DONE]` included."""

    def chunk(choices: Sequence[JSON], chunk_usage: JSON | None) -> bytes:
        body = {
            "choices": choices,
            "created": created,
            "id": completion_id,
            "model": model,
            "object": "chat.completion.chunk",
            "usage": chunk_usage,
        }
        return b"data: " + dumps(body) + b"\n\n"

    def choice(delta: JSON, finish_reason: str | None) -> JSON:
        return {"delta": delta, "finish_reason": finish_reason, "index": 0, "logprobs": None}

    yield chunk([choice({"content": "", "role": "assistant"}, None)], None)
    # One pre-encoded template around the token: {"choices":[{"delta":{"content":"…"},…}
    marker = "\x00"
    head, tail = chunk([choice({"content": marker}, None)], None).split(dumps(marker))
    for index in range(count):
        yield head + dumps(token(index)) + tail
    yield chunk([choice({}, "stop")], None)
    if include_usage:
        yield chunk([], usage.chat())
    yield b"data: [DONE]\n\n"


# --------------------------------------------------------------------------- responses


def message_item(item_id: str, text: str, status: str) -> JSON:
    content = [{"annotations": [], "logprobs": [], "text": text, "type": "output_text"}]
    return {
        "content": content if status == "completed" else [],
        "id": item_id,
        "role": "assistant",
        "status": status,
        "type": "message",
    }


def response_object(
    response_id: str,
    created_at: int,
    model: str,
    request: Mapping[str, Any],
    output: list[JSON],
    usage: Usage | None,
    status: str,
) -> JSON:
    """A `response` object; request settings are echoed as OpenAI does."""
    return {
        "background": bool(request.get("background", False)),
        "completed_at": created_at if status == "completed" else None,
        "created_at": created_at,
        "error": None,
        "id": response_id,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "metadata": request.get("metadata") or {},
        "model": model,
        "object": "response",
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": request.get("reasoning") or {"effort": None, "summary": None},
        "status": status,
        "store": request.get("store", True) is not False,
        "temperature": request.get("temperature", 1.0),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p", 1.0),
        "truncation": request.get("truncation", "disabled"),
        "usage": usage.responses() if usage is not None else None,
        "user": request.get("user"),
    }


def responses_stream(
    completed: Mapping[str, Any], count: int, *, event_lines: bool
) -> Iterator[bytes]:
    """The SSE frames of a streamed response, from `response.created` to `response.completed`.

    `completed` is the finished response object; the early events carry it `in_progress`.
    Frames are data-only unless `event_lines` asks for an `event: <type>` line before each.
    """
    item = completed["output"][0]
    item_id = item["id"]
    text = item["content"][0]["text"]
    in_progress = {**completed, "completed_at": None, "output": [], "status": "in_progress"}
    in_progress["usage"] = None
    sequence = 0

    def frame(type_: str, fields: JSON) -> bytes:
        nonlocal sequence
        data = dumps({**fields, "sequence_number": sequence, "type": type_})
        sequence += 1
        if event_lines:
            return b"event: " + type_.encode() + b"\ndata: " + data + b"\n\n"
        return b"data: " + data + b"\n\n"

    where = {"content_index": 0, "item_id": item_id, "output_index": 0}
    empty_part = {"annotations": [], "logprobs": [], "text": "", "type": "output_text"}
    yield frame("response.created", {"response": in_progress})
    yield frame("response.in_progress", {"response": in_progress})
    yield frame(
        "response.output_item.added",
        {"item": message_item(item_id, "", "in_progress"), "output_index": 0},
    )
    yield frame("response.content_part.added", {**where, "part": empty_part})
    yield from _deltas(where, count, sequence, event_lines)
    sequence += count
    yield frame("response.output_text.done", {**where, "logprobs": [], "text": text})
    yield frame("response.content_part.done", {**where, "part": item["content"][0]})
    yield frame("response.output_item.done", {"item": item, "output_index": 0})
    terminal = _TERMINAL_EVENTS.get(completed["status"], "response.failed")
    yield frame(terminal, {"response": completed})


_TERMINAL_EVENTS = {"completed": "response.completed", "incomplete": "response.incomplete"}
"""The last event of a stream by the response's status; any other end (failed, cancelled) is
`response.failed`, as the SDK's event types have no `response.cancelled`."""


def stored_response_stream(response: Mapping[str, Any], *, event_lines: bool) -> Iterator[bytes]:
    """`GET /responses/{id}?stream=true`: the events of a stored response, replayed from the
    first, ending with its terminal event (the simulator's stored responses are finished)."""
    item = response["output"][0] if response.get("output") else None
    if item is None or not item.get("content"):
        item = message_item("msg_replayed", "", "completed")
        response = {**response, "output": [item]}
    count = len(item["content"][0]["text"].split())
    return responses_stream(response, count, event_lines=event_lines)


def _deltas(where: JSON, count: int, first_sequence: int, event_lines: bool) -> Iterator[bytes]:
    """The `response.output_text.delta` frames, from one template (the hot loop at 10k tokens)."""
    marker_delta, marker_seq = "\x00", 999_999_999
    template = dumps(
        {
            **where,
            "delta": marker_delta,
            "logprobs": [],
            "sequence_number": marker_seq,
            "type": "response.output_text.delta",
        }
    )
    head, rest = template.split(dumps(marker_delta))
    middle, tail = rest.split(str(marker_seq).encode())
    prefix = b"data: " + head
    if event_lines:
        prefix = b"event: response.output_text.delta\n" + prefix
    for index in range(count):
        yield (
            prefix
            + dumps(token(index))
            + middle
            + str(first_sequence + index).encode()
            + tail
            + b"\n\n"
        )


def input_items(value: object, make_id: Callable[[str], str]) -> list[JSON]:
    """The input of a Responses request as the `input_items` list shows it (ids added)."""
    if isinstance(value, str):
        value = [{"content": value, "role": "user"}]
    if not isinstance(value, list):
        return []
    items: list[JSON] = []
    for raw in value:
        if not isinstance(raw, dict):
            continue
        item = dict(raw)
        if "role" in item and item.get("type", "message") == "message":
            content = item.get("content")
            if isinstance(content, str):
                kind = "output_text" if item["role"] == "assistant" else "input_text"
                item["content"] = [{"text": content, "type": kind}]
            item.setdefault("type", "message")
            item.setdefault("status", "completed")
        item.setdefault("id", make_id("msg_"))
        items.append(item)
    return items


# --------------------------------------------------------------------------- models


def model_list(models: Sequence[str], created: int) -> JSON:
    return {
        "data": [
            {"created": created, "id": model, "object": "model", "owned_by": model.split(".")[0]}
            for model in models
        ],
        "object": "list",
    }
