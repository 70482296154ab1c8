"""What each Mantle operation answers, once the request is authenticated and routed.

Kept apart from the HTTP plumbing (`server.py`) so the answers can be read in one place: an
`Answer` is a status, headers and either a whole body or an iterator of SSE frames. Nothing
here touches a socket, sleeps or knows about faults.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

from . import formats, messages
from .formats import JSON, Usage
from .routes import Route, prefix_for
from .store import ResponseStore, StoredResponse

MAX_TOKENS_LIMIT = 1_000_000


class Knobs(Protocol):
    """The simulator settings the answers depend on (the `Simulator` instance provides them)."""

    models: list[str]
    model_prefixes: dict[str, str]
    reasoning_tokens: int
    cached_tokens: int
    default_max_tokens: int
    responses_event_lines: bool
    message_tokens: int
    cache_write_tokens: int


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    events: Iterator[bytes] | None = None
    """SSE frames to send one chunk each; when set, `body` is ignored."""

    @property
    def content_type(self) -> str:
        return "text/event-stream" if self.events is not None else "application/json"


class ApiError(Exception):
    """An OpenAI-shaped refusal; `answer()` turns it into what is sent."""

    def __init__(
        self, status: int, message: str, *, type_: str, code: str | None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param

    def answer(self, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
        body = formats.error_body(self.message, self.type, self.code, self.param)
        return Answer(self.status, body, headers)


def invalid(
    message: str, param: str | None = None, code: str | None = "invalid_request"
) -> ApiError:
    return ApiError(400, message, type_="invalid_request_error", code=code, param=param)


def not_found(message: str) -> ApiError:
    return ApiError(404, message, type_="invalid_request_error", code="not_found")


def wrong_route(model: str) -> ApiError:
    """Mantle's refusal of a model asked for under the other prefix."""
    return ApiError(
        400,
        f"model `{model}` isn't supported on this route",
        type_="invalid_request_error",
        code="validation_error",
    )


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def parse_body(raw: bytes) -> JSON:
    """The JSON object a POST carries; an empty body counts as `{}`."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise invalid("We could not parse the JSON body of your request.") from None
    if not isinstance(value, dict):
        raise invalid("The request body must be a JSON object.")
    return value


def model_of(body: Mapping[str, Any]) -> str | None:
    model = body.get("model")
    return model if isinstance(model, str) and model else None


class Api:
    """The operations, bound to one simulator's settings and stored responses."""

    def __init__(self, knobs: Knobs, store: ResponseStore) -> None:
        self.knobs = knobs
        self.store = store

    def handle(
        self, route: Route, query: str, body: JSON, headers: Mapping[str, str] | None = None
    ) -> Answer:
        try:
            if route.operation in ("messages", "count_tokens"):
                return self.anthropic(route, headers or {}, body)
            return self._dispatch(route, query, body)
        except ApiError as error:
            return error.answer()
        except messages.MessagesError as error:
            return Answer(error.status, messages.error_body(error.status, error.message))

    def anthropic(self, route: Route, headers: Mapping[str, str], body: JSON) -> Answer:
        """`/anthropic/v1/messages` (stream or not) and its `count_tokens`."""
        if route.operation == "count_tokens":
            return _json(200, messages.count_tokens(headers, body))
        planned = messages.plan(self.knobs, headers, body)
        message_id = new_id("msg_")
        if planned.stream:
            return Answer(200, events=messages.stream(message_id, planned))
        return _json(200, messages.message(message_id, planned))

    def _dispatch(self, route: Route, query: str, body: JSON) -> Answer:
        if route.operation == "chat":
            return self.chat(route, body)
        if route.operation == "create_response":
            return self.create_response(route, body)
        if route.operation == "models":
            return _json(200, formats.model_list(self.knobs.models, _now()))
        response_id = route.response_id or ""
        if route.operation == "get_response":
            return self._get_response(response_id, query)
        if route.operation == "delete_response":
            if not self.store.delete(response_id):
                raise _unknown_response(response_id)
            return _json(200, {"deleted": True, "id": response_id, "object": "response"})
        if route.operation == "cancel_response":
            cancelled = self.store.set_status(response_id, "cancelled")
            if cancelled is None:
                raise _unknown_response(response_id)
            return _json(200, cancelled)
        if route.operation == "input_items":
            return _json(200, self._input_items(response_id, query))
        raise not_found(f"Unknown operation {route.operation}.")  # pragma: no cover

    # ------------------------------------------------------------------ chat completions

    def chat(self, route: Route, body: JSON) -> Answer:
        model = self._model(route, body)
        count = self._count(body, "max_completion_tokens", "max_tokens")
        usage = self._usage(formats.count_words(body.get("messages")), count)
        completion_id, created = new_id("chatcmpl-"), _now()
        if body.get("stream") is True:
            options = body.get("stream_options")
            include = isinstance(options, dict) and options.get("include_usage") is True
            events = formats.chat_stream(
                completion_id, created, model, count, usage, include_usage=include
            )
            return Answer(200, events=events)
        return _json(200, formats.chat_completion(completion_id, created, model, count, usage))

    # ------------------------------------------------------------------ responses

    def create_response(self, route: Route, body: JSON) -> Answer:
        model = self._model(route, body, allow_previous=True)
        count = self._count(body, "max_output_tokens")
        words = formats.count_words(body.get("input")) + formats.count_words(
            body.get("instructions")
        )
        usage = self._usage(words, count)
        item = formats.message_item(new_id("msg_"), formats.answer_text(count), "completed")
        response = formats.response_object(
            new_id("resp_"), _now(), model, body, [item], usage, "completed"
        )
        if body.get("store", True) is not False:
            self.store.put(response, formats.input_items(body.get("input"), new_id))
        if body.get("background") is True and body.get("stream") is not True:
            # Background work: answered at once as queued; a later GET finds it completed.
            return _json(200, {**response, "status": "queued", "output": [], "usage": None})
        if body.get("stream") is True:
            events = formats.responses_stream(
                response, count, event_lines=self.knobs.responses_event_lines
            )
            return Answer(200, events=events)
        return _json(200, response)

    def _get_response(self, response_id: str, query: str) -> Answer:
        """The stored response; with `?stream=true`, its events replayed as SSE (as OpenAI
        serves a background response), after sequence number `starting_after` if given."""
        response = self._stored(response_id).response
        params = {key: values[-1] for key, values in parse_qs(query).items()}
        if params.get("stream") != "true":
            return _json(200, response)
        after = _int_param(
            params.get("starting_after"), default=-1, low=-1, high=2**31, name="starting_after"
        )
        events = formats.stored_response_stream(
            response, event_lines=self.knobs.responses_event_lines
        )
        return Answer(200, events=itertools.islice(events, after + 1, None))

    def _stored(self, response_id: str) -> StoredResponse:
        found = self.store.get(response_id)
        if found is None:
            raise _unknown_response(response_id)
        return found

    def _input_items(self, response_id: str, query: str) -> JSON:
        items = self._stored(response_id).input_items
        params = {key: values[-1] for key, values in parse_qs(query).items()}
        order = params.get("order", "desc")
        if order not in ("asc", "desc"):
            raise invalid("order must be 'asc' or 'desc'.", param="order")
        if order == "desc":
            items.reverse()
        after = params.get("after")
        if after is not None:
            ids = [item["id"] for item in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        limit = _int_param(params.get("limit"), default=20, low=1, high=100, name="limit")
        page = items[:limit]
        return {
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "has_more": len(items) > limit,
            "last_id": page[-1]["id"] if page else None,
            "object": "list",
        }

    # ------------------------------------------------------------------ shared

    def _model(self, route: Route, body: JSON, *, allow_previous: bool = False) -> str:
        """The requested model, refused when Mantle would serve it under the other prefix."""
        model = model_of(body)
        previous = body.get("previous_response_id")
        if model is None and allow_previous and isinstance(previous, str):
            # Mantle lets a chained Responses call omit `model` (reference §1.3).
            stored = self.store.get(previous)
            if stored is None:
                raise invalid(
                    f"Previous response with id '{previous}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
            model = str(stored.response["model"])
        if model is None:
            raise invalid("you must provide a model parameter", param="model")
        if prefix_for(model, self.knobs.model_prefixes) != route.prefix:
            raise wrong_route(model)
        return model

    def _count(self, body: JSON, *names: str) -> int:
        for name in names:
            if body.get(name) is not None:
                value = body[name]
                if not isinstance(value, int) or isinstance(value, bool):
                    raise invalid(f"{name} must be an integer.", param=name)
                if not 1 <= value <= MAX_TOKENS_LIMIT:
                    raise invalid(f"{name} must be between 1 and {MAX_TOKENS_LIMIT}.", param=name)
                return value
        return self.knobs.default_max_tokens

    def _usage(self, prompt_words: int, count: int) -> Usage:
        return Usage.of(prompt_words, count, self.knobs.reasoning_tokens, self.knobs.cached_tokens)


def _json(status: int, value: Any) -> Answer:
    return Answer(status, formats.dumps(value))


def _now() -> int:
    return int(time.time())


def _unknown_response(response_id: str) -> ApiError:
    return not_found(f"Response with id '{response_id}' not found.")


def _int_param(raw: str | None, *, default: int, low: int, high: int, name: str) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"{name} must be an integer.", param=name) from None
    if not low <= value <= high:
        raise invalid(f"{name} must be between {low} and {high}.", param=name)
    return value
