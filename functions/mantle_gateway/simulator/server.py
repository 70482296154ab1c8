"""The simulator's HTTP side: a stdlib threaded server speaking HTTP/1.1 like Mantle's front door.

Why the standard library: the simulator ships inside the package (for `mantle-gateway serve
--upstream simulator`) and is started by tests and benchmarks, so it must import in a blink and
add no dependency. Keep-alive, `TCP_NODELAY` and one chunk per SSE event (written straight to the
socket) let a client observe streaming exactly as produced: first byte long before the last.

Order of work per request: read it whole → authenticate → route → parse the body → take the
first matching fault → record it → answer (or misbehave as the fault says).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import selectors
import socket
import socketserver
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

from . import formats, guardrail, messages
from .api import Answer, Api, ApiError, model_of, parse_body, wrong_route
from .auth import authenticate
from .faults import (
    BadUsage,
    DelayHeaders,
    DropMidStream,
    ErrorAnswer,
    Fault,
    FaultQueue,
    ResetConnection,
    SlowStream,
    WrongRoute,
)
from .records import RequestLog, SeenRequest
from .routes import DEFAULT_MODEL_PREFIXES, MethodNotAllowed, match, split_prefix
from .sigv4 import MAX_CLOCK_SKEW_SECONDS, WireRequest
from .sigv4 import SERVICE as SIGNING_SERVICE
from .store import ResponseStore

SIMULATOR_REGION = "us-east-1"
SIMULATOR_ACCESS_KEY = "AKIDSIMULATOR"
SIMULATOR_SECRET_KEY = "simulator-secret-key-not-a-real-secret"  # noqa: S105 - public test value

DEFAULT_MODELS: tuple[str, ...] = (
    "openai.gpt-oss-120b",
    "openai.gpt-oss-20b",
    "openai.gpt-oss-safeguard-120b",
    "openai.gpt-oss-safeguard-20b",
    "openai.gpt-5.4",
    "openai.gpt-5.5",
    "mistral.mistral-large-3-675b-instruct",
    "deepseek.v3.2",
    "google.gemma-4-31b",
    "xai.grok-4.3",
)

_CHUNKED_END = b"0\r\n\r\n"


class Simulator:
    """A local stand-in for `https://bedrock-mantle.{region}.api.aws`.

    Settings are plain attributes, read on every request, so a test may change them at any time:
    `model_prefixes`, `models`, `reasoning_tokens`, `cached_tokens`, `cache_write_tokens`,
    `default_max_tokens`, `message_tokens`, `event_delay`, `responses_event_lines`,
    `credentials`, `bearer_token`, `clock`.
    """

    def __init__(
        self,
        region: str = SIMULATOR_REGION,
        access_key: str = SIMULATOR_ACCESS_KEY,
        secret_key: str = SIMULATOR_SECRET_KEY,
        bearer_token: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.region = region
        self.credentials: dict[str, str] = {access_key: secret_key}
        """Access key id → secret key of every identity whose signature is accepted."""
        self.bearer_token = bearer_token
        """When set, `Authorization: Bearer <token>` is accepted instead of a signature."""
        self.model_prefixes: dict[str, str] = dict(DEFAULT_MODEL_PREFIXES)
        """Model or glob → `/v1` | `/openai/v1`; exact names first, later globs win."""
        self.models: list[str] = list(DEFAULT_MODELS)
        self.reasoning_tokens = 0
        self.cached_tokens = 0
        """Prompt tokens read from a cache (OpenAI `cached_tokens`, Anthropic cache reads)."""
        self.cache_write_tokens = 0
        """Prompt tokens written to a cache (Anthropic `cache_creation_input_tokens`)."""
        self.default_max_tokens = 8
        self.message_tokens = 8
        """Tokens an Anthropic Messages answer runs to before it ends, if `max_tokens` allows."""
        self.event_delay = 0.0
        """Seconds between two stream events (the first event is sent at once)."""
        self.responses_event_lines = False
        """Emit `event: <type>` lines in Responses streams (Mantle's are data-only)."""
        self.clock: Callable[[], float] = time.time
        """Server time for the `x-amz-date` freshness check; tests may shift it."""
        self.max_clock_skew = MAX_CLOCK_SKEW_SECONDS
        self.guardrail_blocked_words: list[str] = ["forbidden-word"]
        """Words the ApplyGuardrail stand-in blocks (case-insensitive), in input and output."""
        self.guardrail_blocked_input_message = "Sorry, the model cannot answer this question."
        self.guardrail_blocked_output_message = "Sorry, the model cannot answer this question."
        self.guardrail_failing_sources: frozenset[str] = frozenset()
        """`INPUT` and/or `OUTPUT`: ApplyGuardrail answers 503 for checks of these sources."""
        self.guardrail_delay = 0.0
        """Seconds every ApplyGuardrail answer waits (the bench's fixed guardrail latency)."""
        self._address = (host, port)
        self._faults = FaultQueue()
        self._store = ResponseStore()
        self._log = RequestLog()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._api = Api(self, self._store)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Simulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self._address, self)
        self._thread = threading.Thread(
            target=self._server.serve,
            name=f"mantle-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, interrupt injected delays and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        server.server_close()
        server.close_connections()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, without a path: add `/v1` or `/openai/v1` yourself."""
        return f"http://{self._address[0]}:{self.port}"

    # ------------------------------------------------------------------ test controls

    def inject(self, fault: Fault) -> None:
        """Queue `fault` for the next request it matches (FIFO among matching faults)."""
        self._faults.put(fault)

    @property
    def pending_faults(self) -> list[Fault]:
        return self._faults.pending()

    @property
    def requests(self) -> list[SeenRequest]:
        """A snapshot of the recent requests, oldest first: every one since the start or the last
        `reset`, up to the log's bound (`request_log`; 1,000 requests, 16 MiB of bodies)."""
        return self._log.recent()

    @property
    def request_count(self) -> int:
        """Every request seen since the start or the last `reset`, dropped records included."""
        return self._log.count

    def requests_since(self, count: int) -> list[SeenRequest]:
        """The requests seen after `request_count` was `count`, as far as the log still holds."""
        return self._log.since(count)

    @property
    def request_log(self) -> RequestLog:
        """The recent-request log; its `max_requests` and `max_body_bytes` may be changed."""
        return self._log

    @property
    def response_store(self) -> ResponseStore:
        """Stored responses; its `max_items` and `max_bytes` may be changed."""
        return self._store

    def stored_response(self, response_id: str) -> dict[str, Any] | None:
        found = self._store.get(response_id)
        return found.response if found is not None else None

    def reset(self) -> None:
        """Forget recorded requests, pending faults and stored responses."""
        self._log.clear()
        self._faults.clear()
        self._store.clear()

    # ------------------------------------------------------------------ used by the handler

    def _record(self, seen: SeenRequest) -> None:
        self._log.add(seen)

    def _wait(self, seconds: float) -> bool:
        """Sleep unless the simulator stops first; True when it is stopping."""
        return seconds > 0 and self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # benchmarks open many connections at once

    def __init__(self, address: tuple[str, int], sim: Simulator) -> None:
        self.sim = sim
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._waker, self._wakee = socket.socketpair()
        super().__init__(address, _Handler)

    def serve(self) -> None:
        """Accept until `wake()`; unlike `serve_forever` it stops at once, not after a poll tick."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wakee, selectors.EVENT_READ)
            while not self.sim._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self.socket and not self.sim._stopping.is_set():
                        self.handle_request()

    def wake(self) -> None:
        self._waker.send(b"x")

    def server_close(self) -> None:
        super().server_close()
        self._waker.close()
        self._wakee.close()

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (socket.getfqdn); not needed here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY: each SSE chunk leaves at once
    server_version = "MantleSimulator/1.0"
    sys_version = ""

    @property
    def sim(self) -> Simulator:
        return cast(_Server, self.server).sim

    def setup(self) -> None:
        super().setup()
        cast(_Server, self.server).track(self.connection, True)

    def finish(self) -> None:
        cast(_Server, self.server).track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests and benchmarks read `sim.requests`, not stderr."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    # ------------------------------------------------------------------ one request

    def _serve(self) -> None:
        request_id = str(uuid.uuid4())
        path, _, query = self.path.partition("?")
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True  # the framing is lost: this connection is done
            error = ApiError(
                400, "Malformed request body.", type_="invalid_request_error", code=None
            )
            self._record(path, query, b"", request_id, error, None)
            self._answer(_refusal(path, error), request_id)
            return
        sim = self.sim
        wire = WireRequest(self.command, path, query, list(self.headers.items()), body)
        guarded = guardrail.PATH.match(path) is not None
        denied = authenticate(
            wire,
            region=sim.region,
            credentials=sim.credentials,
            bearer_token=sim.bearer_token,
            now=sim.clock(),
            max_skew=sim.max_clock_skew,
            service=guardrail.SERVICE if guarded else SIGNING_SERVICE,
        )
        if denied:
            answer, fault = _refusal(path, denied), None
        elif guarded:
            answer, fault = self._guardrail(path, body)
        else:
            answer, fault = self._decide(path, query, body)
        self._record(path, query, body, request_id, denied, fault)
        try:
            self._misbehave_or_answer(answer, fault, request_id)
        except ConnectionError:
            self.close_connection = True  # the client left; nothing more to send

    def _decide(self, path: str, query: str, body: bytes) -> tuple[Answer, Fault | None]:
        """The normal answer and the fault (if any) that will change it."""
        try:
            route = match(self.command, path)
        except MethodNotAllowed as error:
            refusal = ApiError(
                405,
                f"Method {self.command} is not allowed on {path}.",
                type_="invalid_request_error",
                code="method_not_allowed",
            )
            return _refusal(path, refusal, (("allow", ", ".join(error.allowed)),)), None
        if route is None:
            refusal = ApiError(
                404,
                f"Unknown request URL: {self.command} {path}.",
                type_="invalid_request_error",
                code="not_found",
            )
            return _refusal(path, refusal), None
        try:
            payload = parse_body(body) if self.command == "POST" else {}
        except ApiError as error:
            return _refusal(path, error), None
        model = model_of(payload)
        fault = self.sim._faults.take(path, _route_path(path), model)
        if isinstance(fault, WrongRoute):
            return wrong_route(model or "unknown").answer(), fault
        if isinstance(fault, ErrorAnswer):
            return _error_answer(fault, path), fault
        if isinstance(fault, ResetConnection):
            return Answer(0), fault  # never sent: the socket is reset instead
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = self.sim._api.handle(route, query, payload, headers)
        if isinstance(fault, BadUsage):
            answer = _with_bad_usage(answer, fault)
        return answer, fault

    def _guardrail(self, path: str, body: bytes) -> tuple[Answer, Fault | None]:
        """ApplyGuardrail: faults name it by `guardrail.ROUTE_PATH`; `guardrail_delay` first."""
        sim = self.sim
        fault = sim._faults.take(path, guardrail.ROUTE_PATH, None)
        if isinstance(fault, ErrorAnswer):
            return _error_answer(fault, path), fault
        if isinstance(fault, ResetConnection):
            return Answer(0), fault
        if sim.guardrail_delay:
            sim._wait(sim.guardrail_delay)
        answer = guardrail.apply(
            body,
            blocked_words=sim.guardrail_blocked_words,
            blocked_input_message=sim.guardrail_blocked_input_message,
            blocked_output_message=sim.guardrail_blocked_output_message,
            failing_sources=sim.guardrail_failing_sources,
        )
        return answer, fault

    def _misbehave_or_answer(self, answer: Answer, fault: Fault | None, request_id: str) -> None:
        sim = self.sim
        if isinstance(fault, ResetConnection):
            self._reset()
            return
        if isinstance(fault, DelayHeaders) and sim._wait(fault.seconds):
            self._reset()
            return
        if isinstance(fault, DropMidStream) and answer.events is None:
            self._reset()
            return
        drop_after = fault.after_events if isinstance(fault, DropMidStream) else None
        extra = fault.event_delay if isinstance(fault, SlowStream) else 0.0
        self._answer(answer, request_id, extra_delay=extra, drop_after=drop_after)

    def _answer(
        self,
        answer: Answer,
        request_id: str,
        *,
        extra_delay: float = 0.0,
        drop_after: int | None = None,
    ) -> None:
        self.send_response(answer.status)
        given = {name.lower() for name, _ in answer.headers}
        defaults = (
            ("content-type", answer.content_type),
            ("x-request-id", request_id),
            ("x-amzn-requestid", request_id),
        )
        for name, value in (*[d for d in defaults if d[0] not in given], *answer.headers):
            self.send_header(name, value)
        if answer.events is None:
            self.send_header("content-length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
            return
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self._stream(answer.events, extra_delay, drop_after)

    def _stream(self, events: Iterator[bytes], extra_delay: float, drop_after: int | None) -> None:
        """One chunk per event, each written straight to the socket."""
        sim, write = self.sim, self.wfile.write
        for sent, frame in enumerate(events):
            if sent == drop_after:
                self._drop()
                return
            if sent and sim._wait(sim.event_delay + extra_delay):
                self._drop()
                return
            write(b"%x\r\n%b\r\n" % (len(frame), frame))
        if drop_after is not None:
            self._drop()
            return
        write(_CHUNKED_END)

    # ------------------------------------------------------------------ helpers

    def _read_body(self) -> bytes:
        """The whole request body, by Content-Length or chunked; ValueError when malformed."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("content-length") or 0)
        if length < 0:
            raise ValueError("negative content-length")
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise ValueError("short body")
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline(65537).split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(65537).strip():
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(3)

    def _record(
        self,
        path: str,
        query: str,
        body: bytes,
        request_id: str,
        denied: ApiError | None,
        fault: Fault | None,
    ) -> None:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self.sim._record(
            SeenRequest(
                method=self.command,
                path=path,
                query=query,
                headers=headers,
                body=body,
                signature_ok=denied is None,
                signature_error=denied.message if denied is not None else None,
                request_id=request_id,
                fault=fault,
                peer=f"{self.client_address[0]}:{self.client_address[1]}",
            )
        )

    def _drop(self) -> None:
        """End the connection without the last chunk: the client sees an incomplete body."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _reset(self) -> None:
        """Close with a TCP reset (SO_LINGER 0) before any answer.

        The socket only really closes once the file objects wrapping it are closed too; a
        throw-away `wfile` then takes the final flush that `BaseHTTPRequestHandler` does.
        """
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.wfile.close()
            self.connection.close()
        self.wfile = io.BytesIO()


def _route_path(path: str) -> str:
    found = split_prefix(path)
    return found[1] if found is not None else path


def _with_bad_usage(answer: Answer, fault: BadUsage) -> Answer:
    """The same answer with the fault's raw value in place of the named usage counts."""
    names = b"|".join(re.escape(name.encode()) for name in fault.fields)
    count = re.compile(rb'"(' + names + rb')":-?[0-9]+')
    value = fault.value.encode()

    def spoil(data: bytes) -> bytes:
        return count.sub(lambda found: b'"' + found.group(1) + b'":' + value, data)

    if answer.events is not None:
        return dataclasses.replace(answer, events=(spoil(frame) for frame in answer.events))
    return dataclasses.replace(answer, body=spoil(answer.body))


def _anthropic(path: str) -> bool:
    return path.startswith("/anthropic/")


def _refusal(path: str, error: ApiError, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    """A refusal in the shape of the surface the path belongs to."""
    if _anthropic(path):
        return Answer(error.status, messages.error_body(error.status, error.message), headers)
    return error.answer(headers)


def _error_answer(fault: ErrorAnswer, path: str) -> Answer:
    headers = tuple((name, value) for name, value in fault.headers.items())
    if isinstance(fault.body, bytes):
        body = fault.body
    elif isinstance(fault.body, str):
        body = fault.body.encode()
    elif fault.body is not None:
        body = formats.dumps(fault.body)
    elif _anthropic(path):
        body = messages.error_body(fault.status, _default_error_message(fault.status))
    else:
        body = _default_error(fault.status)
    return Answer(fault.status, body, headers)


_DEFAULT_ERRORS = {
    400: ("validation_error", "invalid_request_error", "Simulated bad request."),
    401: ("invalid_api_key", "permission_denied_error", "Simulated authentication failure."),
    403: ("access_denied", "permission_denied_error", "Simulated access denial."),
    404: ("not_found", "invalid_request_error", "Simulated not found."),
    429: ("rate_limit_exceeded", "rate_limit_error", "Too many requests, please slow down."),
    503: ("service_unavailable", "api_error", "Service unavailable, retry with backoff."),
}
_OTHER_ERROR = ("internal_error", "api_error", "Simulated error.")


def _default_error_message(status: int) -> str:
    return _DEFAULT_ERRORS.get(status, _OTHER_ERROR)[2]


def _default_error(status: int) -> bytes:
    code, type_, message = _DEFAULT_ERRORS.get(status, _OTHER_ERROR)
    return formats.error_body(message, type_, code)


__all__ = [
    "DEFAULT_MODELS",
    "SIMULATOR_ACCESS_KEY",
    "SIMULATOR_REGION",
    "SIMULATOR_SECRET_KEY",
    "Simulator",
]
