"""Where the text a guardrail must read sits in each API's bodies, as slots that can be rewritten.

A slot is (container, key): `container[key]` is a string. Reading a body gives its slots in
order; writing the guardrail's masked texts back is `container[key] = text` on the same parsed
object, which is then serialized again. The family objects (`openai_api`, `anthropic_api`) pick
the functions that fit their routes; nothing here knows about HTTP.

Input is every text a client supplies (system, developer, user, assistant turns and tool
results alike: any of them can carry an injection or personal data). Output is the answer's text.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, MutableSequence
from typing import Any

Slot = tuple[Any, Any]
"""(container, key) with `container[key]` a string."""

_INPUT_PARTS = frozenset({"text", "input_text", "output_text"})


def texts(slots: list[Slot]) -> list[str]:
    return [container[key] for container, key in slots]


def write(slots: list[Slot], values: list[str]) -> None:
    for (container, key), value in zip(slots, values, strict=True):
        container[key] = value


def _content(holder: Any, key: str, part_types: frozenset[str]) -> Iterator[Slot]:
    """`holder[key]` as a string, or a list of parts whose text-typed ones have a `text`."""
    if not isinstance(holder, MutableMapping):
        return
    value = holder.get(key)
    if isinstance(value, str):
        yield holder, key
    elif isinstance(value, MutableSequence):
        for part in value:
            if (
                isinstance(part, MutableMapping)
                and part.get("type") in part_types
                and isinstance(part.get("text"), str)
            ):
                yield part, "text"


def chat_input(data: dict[str, Any]) -> list[Slot]:
    """Chat Completions: every message's `content`, a string or text parts."""
    messages = data.get("messages")
    if not isinstance(messages, list):
        return []
    return [slot for m in messages for slot in _content(m, "content", _INPUT_PARTS)]


def responses_input(data: dict[str, Any]) -> list[Slot]:
    """Responses: `instructions`, and `input` as a string or items with string or part content."""
    slots: list[Slot] = []
    if isinstance(data.get("instructions"), str):
        slots.append((data, "instructions"))
    items = data.get("input")
    if isinstance(items, str):
        slots.append((data, "input"))
    elif isinstance(items, list):
        for item in items:
            slots.extend(_content(item, "content", _INPUT_PARTS))
    return slots


def messages_input(data: dict[str, Any]) -> list[Slot]:
    """Anthropic Messages: `system` and every message's `content` (text blocks, and text blocks
    inside tool results)."""
    slots = list(_content(data, "system", frozenset({"text"})))
    messages = data.get("messages")
    if not isinstance(messages, list):
        return slots
    for message in messages:
        slots.extend(_content(message, "content", frozenset({"text"})))
        blocks = message.get("content") if isinstance(message, dict) else None
        for block in blocks if isinstance(blocks, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                slots.extend(_content(block, "content", frozenset({"text"})))
    return slots


def chat_output(answer: dict[str, Any]) -> list[Slot]:
    choices = answer.get("choices")
    slots: list[Slot] = []
    for choice in choices if isinstance(choices, list) else []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            slots.append((message, "content"))
    return slots


def responses_output(answer: dict[str, Any]) -> list[Slot]:
    output = answer.get("output")
    slots: list[Slot] = []
    for item in output if isinstance(output, list) else []:
        slots.extend(_content(item, "content", frozenset({"output_text"})))
    return slots


def messages_output(answer: dict[str, Any]) -> list[Slot]:
    return list(_content(answer, "content", frozenset({"text"})))


def chat_filtered(answer: dict[str, Any]) -> None:
    for choice in answer.get("choices") or []:
        if isinstance(choice, dict):
            choice["finish_reason"] = "content_filter"


def responses_filtered(answer: dict[str, Any]) -> None:
    answer["status"] = "incomplete"
    answer["incomplete_details"] = {"reason": "content_filter"}


def messages_filtered(answer: dict[str, Any]) -> None:
    """Anthropic's own stop reason for an answer its safety systems cut (`refusal`)."""
    answer["stop_reason"] = "refusal"
