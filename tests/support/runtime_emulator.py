"""A Lambda Runtime API stand-in on loopback that runs the REAL streaming runtime and records
every byte it posts.

AWS's Runtime Interface Emulator cannot stream (aws/aws-lambda-runtime-interface-emulator #175),
so this one speaks just enough of the API (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html):

    GET  /2018-06-01/runtime/invocation/next           the queued events, with the usual headers
    POST /2018-06-01/runtime/invocation/{id}/response  buffered or chunked; chunks parsed by hand
    POST /2018-06-01/runtime/invocation/{id}/error
    POST /2018-06-01/runtime/init/error

and starts the layer the way Lambda does: `exec_wrapper <interpreter> <managed runtime args>`
with `AWS_LAMBDA_RUNTIME_API`, `_HANDLER` and `LAMBDA_TASK_ROOT` set. For each POST it keeps the
request line and headers exactly as sent, every chunk's size line, data and arrival time
(monotonic, in order), the trailers, and the raw framed body, so tests can check the wire byte
for byte.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Any, cast

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "layers" / "streaming_runtime" / "streaming_runtime" / "exec_wrapper"
HANDLERS = Path(__file__).resolve().parent / "handlers"
FUNCTIONS = ROOT / "functions"
API = "/2018-06-01/runtime"
WAIT_SECONDS = 15.0
TRACE_ID = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"


@dataclass(frozen=True)
class Chunk:
    size_line: bytes
    data: bytes
    arrived: float


@dataclass
class Posted:
    """One POST from the runtime: `/response`, `/error` or `/init/error`."""

    path: str
    headers: list[tuple[str, str]]
    head: bytes = b""
    """The request line and header lines exactly as sent, through the blank line."""
    chunks: list[Chunk] = field(default_factory=list)
    trailers: list[tuple[str, str]] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)
    """The body exactly as framed on the wire (size lines, CRLFs, trailers included)."""
    body: bytes = b""
    """The body with the chunk framing taken off."""
    complete: bool = False
    """The terminating chunk (or the whole Content-Length body) arrived."""
    framing_errors: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return _lookup(self.headers, name)

    def trailer(self, name: str) -> str | None:
        return _lookup(self.trailers, name)

    def json(self) -> Any:
        return json.loads(self.body)


def _lookup(pairs: list[tuple[str, str]], name: str) -> str | None:
    for key, value in pairs:
        if key.lower() == name.lower():
            return value
    return None


class Invocation:
    """One queued event and what the runtime answered for it."""

    def __init__(
        self, emulator: RuntimeEmulator, event: Any, *, deadline_ms: int, trace_id: str | None
    ) -> None:
        self.emulator = emulator
        self.request_id = str(uuid.uuid4())
        self.event = event
        self.deadline_ms = deadline_ms
        self.trace_id = trace_id
        self.drop_after_chunks: int | None = None
        self.response: Posted | None = None
        self.error: Posted | None = None
        self._changed = threading.Condition()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _wait(self, ready: Any, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not ready():
                if self.emulator.exit_code() is not None:
                    raise AssertionError(
                        f"runtime exited while waiting for {what}:\n{self.emulator.output()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}:\n{self.emulator.output()}")
                self._changed.wait(min(left, 0.05))

    def wait_done(self, timeout: float = WAIT_SECONDS) -> Invocation:
        """Until the response is complete, or an error was posted."""
        self._wait(
            lambda: (
                self.error is not None or (self.response is not None and self.response.complete)
            ),
            "the end of the response",
            timeout,
        )
        return self

    def wait_for_chunks(self, count: int, timeout: float = WAIT_SECONDS) -> list[Chunk]:
        self._wait(
            lambda: self.response is not None and len(self.response.chunks) >= count,
            f"{count} chunks",
            timeout,
        )
        assert self.response is not None
        return list(self.response.chunks)

    def streamed(self) -> Posted:
        self.wait_done()
        assert self.error is None, f"runtime posted /error: {self.error.body!r}"
        assert self.response is not None
        return self.response

    def prelude_and_payload(self) -> tuple[dict[str, Any], bytes]:
        """Split the http-integration-response body at the first eight NUL bytes."""
        body = self.streamed().body
        cut = body.index(b"\x00" * 8)
        return json.loads(body[:cut]), body[cut + 8 :]


class RuntimeEmulator:
    """Start with `with RuntimeEmulator("module.function") as emulator:`; one process per use."""

    def __init__(
        self,
        handler: str,
        *,
        env: dict[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.handler = handler
        self.extra_env = dict(env or {})
        self.python = python
        self.init_errors: list[Posted] = []
        self.next_calls = 0
        self._pending: queue.Queue[Invocation] = queue.Queue()
        self._invocations: dict[str, Invocation] = {}
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.emulator = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._process: subprocess.Popen[bytes] | None = None
        # Closed in stop(): it outlives this call, so no `with` block can hold it.
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.server_port}"

    def environment(self) -> dict[str, str]:
        """What Lambda would set for a python3.13 function, pointed at this emulator."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",  # /opt is read-only in Lambda; keep the tree clean
            "AWS_LAMBDA_RUNTIME_API": self.address,
            "_HANDLER": self.handler,
            "LAMBDA_TASK_ROOT": str(HANDLERS),
            "PYTHONPATH": os.pathsep.join([str(FUNCTIONS), str(HANDLERS)]),
            "AWS_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": "mantle-gateway-test",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/mantle-gateway-test",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
        }
        env.update(self.extra_env)
        return env

    def start(self) -> RuntimeEmulator:
        self._thread.start()
        # Lambda runs the wrapper with the interpreter and the managed runtime's own arguments.
        command = [str(WRAPPER), self.python, "/var/runtime/bootstrap.py"]
        self._process = subprocess.Popen(
            command,
            env=self.environment(),
            cwd=HANDLERS,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._server.shutdown()
        self._server.server_close()
        self._log.close()

    def __enter__(self) -> RuntimeEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def invoke(
        self,
        event: Any,
        *,
        deadline_ms: int | None = None,
        trace_id: str | None = TRACE_ID,
        drop_after_chunks: int | None = None,
    ) -> Invocation:
        """Queue an event; `drop_after_chunks` cuts the response connection after that many
        chunks, as Lambda does when the invocation ends under the runtime (timeout, reset)."""
        if deadline_ms is None:
            deadline_ms = int(time.time() * 1000) + 300_000
        invocation = Invocation(self, event, deadline_ms=deadline_ms, trace_id=trace_id)
        invocation.drop_after_chunks = drop_after_chunks
        self._invocations[invocation.request_id] = invocation
        self._pending.put(invocation)
        return invocation

    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def wait_exit(self, timeout: float = WAIT_SECONDS) -> int:
        assert self._process is not None
        return self._process.wait(timeout=timeout)

    def wait_idle(self, timeout: float = WAIT_SECONDS) -> None:
        """Until the runtime asks for an event after every queued one: it has finished them all,
        including what it does after the response (closing the body)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.next_calls <= len(self._invocations):
                if self.exit_code() is not None:
                    raise AssertionError(f"runtime exited:\n{self.output()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"runtime still busy:\n{self.output()}")
                self._changed.wait(min(left, 0.05))

    def wait_for_init_error(self, timeout: float = WAIT_SECONDS) -> Posted:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self.init_errors:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no /init/error:\n{self.output()}")
                self._changed.wait(min(left, 0.05))
        return self.init_errors[0]

    def output(self) -> str:
        """What the runtime process wrote to stdout and stderr so far."""
        self._log.flush()
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        self._log.seek(0, os.SEEK_END)
        return text

    # -- called from the server threads -------------------------------------------------

    def _next(self) -> Invocation | None:
        with self._changed:
            self.next_calls += 1
            self._changed.notify_all()
        while not self._stopping.is_set():
            try:
                return self._pending.get(timeout=0.05)
            except queue.Empty:
                continue
        return None

    def _record_init_error(self, posted: Posted) -> None:
        with self._changed:
            self.init_errors.append(posted)
            self._changed.notify_all()

    def _invocation(self, request_id: str) -> Invocation | None:
        return self._invocations.get(request_id)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: RuntimeEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A runtime that stops (or is stopped) mid-request resets its connections: expected."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _HeadRecorder:
    """The connection's reader, keeping a copy of every line read since `restart()`: the request
    line and the headers are read line by line before any body byte."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self.lines = bytearray()

    def restart(self) -> None:
        self.lines.clear()

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self._reader.readline(limit)
        self.lines += line
        return line

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._reader.read(size)
        return data

    def close(self) -> None:
        self._reader.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self._recorder = _HeadRecorder(self.rfile)
        self.rfile = cast(Any, self._recorder)

    def handle_one_request(self) -> None:
        self._recorder.restart()
        super().handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read the records, not the access log."""

    def do_GET(self) -> None:
        if self.path != f"{API}/invocation/next":
            self._reply(404, {"errorType": "NotFound"})
            return
        invocation = self.server.emulator._next()
        if invocation is None:
            self.close_connection = True
            return
        body = json.dumps(invocation.event).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", invocation.request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms))
        self.send_header(
            "Lambda-Runtime-Invoked-Function-Arn",
            "arn:aws:lambda:us-east-1:123456789012:function:mantle-gateway-test",
        )
        if invocation.trace_id:
            self.send_header("Lambda-Runtime-Trace-Id", invocation.trace_id)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        emulator = self.server.emulator
        head = bytes(self._recorder.lines)  # nothing of the body is read yet
        posted = Posted(path=self.path, headers=list(self.headers.items()), head=head)
        if self.path == f"{API}/init/error":
            self._read_whole(posted)
            emulator._record_init_error(posted)
            self._reply(202, {"status": "OK"})
            return
        parts = self.path.removeprefix(f"{API}/invocation/").split("/")
        invocation = emulator._invocation(parts[0]) if len(parts) == 2 else None
        if invocation is None or parts[1] not in ("response", "error"):
            self._reply(400, {"errorType": "InvalidRequestID"})
            return
        mode = posted.header("Lambda-Runtime-Function-Response-Mode")
        if mode is not None and mode != "streaming":
            # What Lambda answers for any other value (Runtime.InvalidResponseModeHeader).
            self._reply(400, {"errorType": "Runtime.InvalidResponseModeHeader"})
            return
        if parts[1] == "error":
            invocation.error = posted
            self._read_whole(posted)
        else:
            invocation.response = posted
            if (posted.header("Transfer-Encoding") or "").lower() == "chunked":
                if not self._read_chunked(posted, invocation):
                    return
            else:
                self._read_whole(posted)
        invocation._notify()
        self._reply(202, {"status": "OK"})

    def _read_whole(self, posted: Posted) -> None:
        length = int(posted.header("Content-Length") or 0)
        posted.body = self.rfile.read(length)
        posted.raw += posted.body
        posted.complete = True

    def _read_chunked(self, posted: Posted, invocation: Invocation) -> bool:
        """Parse the chunked body by hand, recording each chunk as it lands. False if dropped."""
        body = bytearray()
        while True:
            size_line = self.rfile.readline(65_537)
            if not size_line:
                posted.framing_errors.append("connection closed before the terminating chunk")
                invocation._notify()
                return False
            posted.raw += size_line
            if not size_line.endswith(b"\r\n"):
                posted.framing_errors.append(f"size line without CRLF: {size_line!r}")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                self._read_trailers(posted)
                posted.body = bytes(body)
                posted.complete = True
                return True
            data = self.rfile.read(size)
            end = self.rfile.read(2)
            posted.raw += data + end
            if end != b"\r\n":
                posted.framing_errors.append(f"chunk of {size} bytes not followed by CRLF")
            body += data
            posted.chunks.append(Chunk(size_line, data, time.monotonic()))
            posted.body = bytes(body)
            invocation._notify()
            limit = invocation.drop_after_chunks
            if limit is not None and len(posted.chunks) >= limit:
                self._drop()
                return False

    def _read_trailers(self, posted: Posted) -> None:
        while True:
            line = self.rfile.readline(65_537)
            posted.raw += line
            if line in (b"\r\n", b"\n", b""):
                return
            name, _, value = line.decode("latin-1").partition(":")
            posted.trailers.append((name.strip(), value.strip()))

    def _drop(self) -> None:
        """Reset the connection (SO_LINGER 0): the runtime's next write fails at once."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def _reply(self, status: int, document: dict[str, str]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
