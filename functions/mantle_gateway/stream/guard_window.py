"""A guarded stream: the relay's events held back and released in checked windows.

Wraps the relay's output (already the client's stream: usage stripped, errors shaped). Events
are held, in order, while the text they carry accumulates; once `window` characters are pending,
or at a boundary (the end of a text part or of the answer), the pending text is checked and
every held event is released. So nothing past a checked window reaches the client, and the
first byte waits for at most one window's check. Each check also reads the last `OVERLAP`
characters already released, so a blocked phrase split across two windows is still seen.

Verdicts: `pass` releases; `mask` replaces the held text by the masked text (one synthesized text
event in place of the first) and goes on, where the surface has no event repeating the whole
text (chat, Anthropic; on Responses, whose `.done` events repeat it, a mask ends the stream like
a block); `block` drops the held events and ends the stream with the guardrail's text and a
filtered finish (chat `finish_reason: content_filter` and `[DONE]`; Responses
`response.incomplete` with `incomplete_details.reason: content_filter`; Anthropic
`stop_reason: refusal`); `fail` (the check failed closed) ends it with the surface's error event.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Generator, Iterator
from typing import Any, NamedTuple, Protocol

from mantle_gateway.stream.relay import DONE, Observation
from mantle_gateway.stream.sse import SSEDecoder, SSEEvent, frame
from mantle_gateway.usage import parse_upstream_json

Check = Callable[[str], tuple[str, str]]
"""Text → (pass | mask | block | fail, the text to show: masked text or the guardrail's)."""
OVERLAP = 100


class Upstream(Protocol):
    observed: Observation

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class Dialect(Protocol):
    masks_in_place: bool

    def text(self, event: SSEEvent, payload: dict[str, Any] | None) -> str | None: ...

    def boundary(self, event: SSEEvent, payload: dict[str, Any] | None) -> bool: ...

    def with_text(self, template: dict[str, Any], text: str) -> bytes: ...

    def blocked(self, template: dict[str, Any], text: str) -> bytes: ...

    def error(self, message: str) -> bytes: ...


class GuardedStream:
    def __init__(self, relay: Upstream, *, dialect: Dialect, check: Check, window: int) -> None:
        self._relay = relay
        self._dialect = dialect
        self._check = check
        self._window = window
        self._held: list[_Held] = []
        self._pending = 0
        self._released_tail = ""
        self._gen = self._run()

    def __iter__(self) -> GuardedStream:
        return self

    def __next__(self) -> bytes:
        return next(self._gen)

    def close(self) -> None:
        try:
            self._gen.close()
        finally:
            self._relay.close()

    def _run(self) -> Generator[bytes, None, None]:
        decoder = SSEDecoder()
        for chunk in self._relay:
            for event in decoder.feed(chunk):
                payload = (
                    parse_upstream_json(event.data) if event.data not in (None, b"[DONE]") else None
                )
                text = self._dialect.text(event, payload)
                boundary = self._dialect.boundary(event, payload)
                self._held.append(_Held(event, payload, text, boundary))
                self._pending += len(text or "")
                if boundary or self._pending >= self._window:
                    out, go_on = self._release()
                    if out:
                        yield out
                    if not go_on:
                        return
        for event in decoder.flush():
            self._held.append(_Held(event, None, None, False))
        out, _ = self._release()
        if out:
            yield out

    def _release(self) -> tuple[bytes, bool]:
        """Check the held text and send what may go; False when the stream must end here."""
        held, self._held, self._pending = self._held, [], 0
        window = "".join(h.text for h in held if h.text)
        if not window:
            return b"".join(h.event.raw for h in held), True
        tail = self._released_tail
        action, shown = self._check(tail + window)
        if action == "mask" and self._dialect.masks_in_place and shown.startswith(tail):
            shown = shown[len(tail) :]
            out: list[bytes] = []
            placed = False
            for h in held:
                if h.text is None:
                    out.append(h.event.raw)
                elif not placed and h.payload is not None:
                    out.append(self._dialect.with_text(h.payload, shown))
                    placed = True
            self._released_tail = (tail + shown)[-OVERLAP:]
            return b"".join(out), True
        if action == "pass":
            self._released_tail = (tail + window)[-OVERLAP:]
            return b"".join(h.event.raw for h in held), True
        if action == "fail":
            self._relay.observed.outcome = "guardrail_failed"
            return self._dialect.error("The guardrail service is unavailable."), False
        self._relay.observed.outcome = "guardrail_intervened"
        template = next(h.payload for h in held if h.text is not None and h.payload is not None)
        before = b"".join(h.event.raw for h in held if h.text is None and not h.boundary)
        return before + self._dialect.blocked(template, shown), False


class _Held(NamedTuple):
    event: SSEEvent
    payload: dict[str, Any] | None
    text: str | None
    boundary: bool


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class ChatDialect:
    masks_in_place = True

    def text(self, event: SSEEvent, payload: dict[str, Any] | None) -> str | None:
        """Every choice's content (`n` > 1 interleaves them: none may pass unchecked)."""
        choices = payload.get("choices") if payload else None
        texts: list[str] = []
        for choice in choices if isinstance(choices, list) else []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str):
                texts.append(content)
        return "".join(texts) or None

    def boundary(self, event: SSEEvent, payload: dict[str, Any] | None) -> bool:
        if event.data == b"[DONE]":
            return True
        choices = payload.get("choices") if payload else None
        first = choices[0] if isinstance(choices, list) and choices else None
        return isinstance(first, dict) and bool(first.get("finish_reason"))

    def with_text(self, template: dict[str, Any], text: str) -> bytes:
        chunk = copy.deepcopy(template)
        chunk["choices"] = [{"index": 0, "delta": {"content": text}, "finish_reason": None}]
        chunk.pop("usage", None)
        return frame(_dumps(chunk))

    def blocked(self, template: dict[str, Any], text: str) -> bytes:
        finish = copy.deepcopy(template)
        finish["choices"] = [{"index": 0, "delta": {}, "finish_reason": "content_filter"}]
        finish.pop("usage", None)
        return self.with_text(template, text) + frame(_dumps(finish)) + DONE

    def error(self, message: str) -> bytes:
        error = {"message": message, "type": "api_error", "code": "guardrail_unavailable"}
        return frame(_dumps({"error": error | {"param": None}})) + DONE


class ResponsesDialect:
    masks_in_place = False
    _BOUNDARIES = frozenset(
        {
            "response.output_text.done",
            "response.completed",
            "response.incomplete",
            "response.failed",
        }
    )

    def __init__(self) -> None:
        self._created: dict[str, Any] = {}

    def text(self, event: SSEEvent, payload: dict[str, Any] | None) -> str | None:
        if not payload:
            return None
        if payload.get("type") == "response.created" and isinstance(payload.get("response"), dict):
            self._created = payload["response"]
        delta = payload.get("delta")
        if payload.get("type") == "response.output_text.delta" and isinstance(delta, str):
            return delta or None
        return None

    def boundary(self, event: SSEEvent, payload: dict[str, Any] | None) -> bool:
        return payload is not None and payload.get("type") in self._BOUNDARIES

    def with_text(self, template: dict[str, Any], text: str) -> bytes:
        event = dict(template, delta=text)
        return frame(_dumps(event), "response.output_text.delta")

    def blocked(self, template: dict[str, Any], text: str) -> bytes:
        response = dict(
            self._created,
            status="incomplete",
            incomplete_details={"reason": "content_filter"},
        )
        end = {"type": "response.incomplete", "response": response}
        return self.with_text(template, text) + frame(_dumps(end), "response.incomplete")

    def error(self, message: str) -> bytes:
        event = {
            "type": "error",
            "code": "guardrail_unavailable",
            "message": message,
            "param": None,
        }
        return frame(_dumps(event), "error")


class MessagesDialect:
    masks_in_place = True
    _BOUNDARIES = frozenset({"content_block_stop", "message_delta", "message_stop"})

    def text(self, event: SSEEvent, payload: dict[str, Any] | None) -> str | None:
        if not payload or payload.get("type") != "content_block_delta":
            return None
        delta = payload.get("delta")
        if isinstance(delta, dict) and delta.get("type") == "text_delta":
            text = delta.get("text")
            return text if isinstance(text, str) and text else None
        return None

    def boundary(self, event: SSEEvent, payload: dict[str, Any] | None) -> bool:
        return payload is not None and payload.get("type") in self._BOUNDARIES

    def with_text(self, template: dict[str, Any], text: str) -> bytes:
        event = dict(template, delta={"type": "text_delta", "text": text})
        return frame(_dumps(event), "content_block_delta")

    def blocked(self, template: dict[str, Any], text: str) -> bytes:
        index = template.get("index", 0)
        stop = {"type": "content_block_stop", "index": index}
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": "refusal", "stop_sequence": None},
            "usage": {"output_tokens": 0},
        }
        return (
            self.with_text(template, text)
            + frame(_dumps(stop), "content_block_stop")
            + frame(_dumps(delta), "message_delta")
            + frame(_dumps({"type": "message_stop"}), "message_stop")
        )

    def error(self, message: str) -> bytes:
        error = {"type": "error", "error": {"type": "api_error", "message": message}}
        return frame(_dumps(error), "error")


DIALECTS: dict[str, Callable[[], Dialect]] = {
    "chat_completions": ChatDialect,
    "responses": ResponsesDialect,
    "messages": MessagesDialect,
}
