"""What the bench adds inside the gateway's process, without touching the core.

- `CallLog`: ordered marks — `request` (the door handed a request to the core), `dynamodb <Op>`
  (each call of the gateway's `Dynamo`, with its whole duration as its caller waits on it:
  building and signing the request, the round trip, parsing the answer), `upstream` (the
  SigV4 credentials were asked for, which the signer does right before the upstream call),
  `returned` (the core handed the answer back to the door) and `closed` (the door closes the
  answer, after its last byte went to the socket). Counting DynamoDB calls between those
  marks splits them into before-upstream / during the answer / after the last byte.
- `Tap`: wraps the `Gateway` as the local door's handler and answers `/__bench/*` itself: the
  marks, the process's CPU time and memory (resident set and its high-water mark, which Linux
  lets a process reset through `/proc/self/clear_refs`), and `settled?id=…`, which returns once
  that request's answer is closed and its usage written (the local door writes usage on a
  background writer: `settled` also waits for that writer to be idle). A client that waits for
  it before its next request times each request alone, with no usage write running beside it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs

import httpx

from mantle_gateway.messages import GatewayRequest, GatewayResponse
from mantle_gateway.store.dynamo import Dynamo
from mantle_gateway.store.wire import pooled_transport

if TYPE_CHECKING:
    from mantle_gateway.core.pipeline import Gateway
    from mantle_gateway.errors import GatewayError
    from mantle_gateway.store.background_ledger import BackgroundLedger
    from mantle_gateway.store.wire import WireClient
    from mantle_gateway.upstream.signing import Credentials, CredentialSource

T = TypeVar("T")
ADMIN_PREFIX = "/__bench/"
REQUEST_ID_HEADER = "x-gateway-request-id"


class CallLog:
    """Marks as `[kind, detail, milliseconds, perf_counter, thread]` lists, in the order they
    happened (milliseconds: a DynamoDB call's duration, else 0; thread: the marking thread's
    ident — the door serves each request on one thread, so a thread's marks are in sequence
    even when requests run concurrently)."""

    def __init__(self) -> None:
        self._marks: list[list[Any]] = []
        self._lock = threading.Lock()
        self.calling = threading.local()
        """The DynamoDB call this thread is in, once its first attempt is marked."""

    def mark(self, kind: str, detail: str = "") -> list[Any]:
        entry: list[Any] = [kind, detail, 0.0, time.perf_counter(), threading.get_ident()]
        with self._lock:
            self._marks.append(entry)
        return entry

    def drain(self) -> list[list[Any]]:
        with self._lock:
            marks, self._marks = self._marks, []
        return marks

    def dynamo(self, *, region: str, endpoint_url: str | None) -> Dynamo:
        """The gateway's Dynamo, each of its calls marked with its whole duration as its caller
        waits on it: building and signing the request, every attempt on the wire, reading the
        answer — what the bench's probe of the same call times from outside."""
        return _MarkedDynamo(self, region=region, endpoint_url=endpoint_url)

    def marking(self, credentials: CredentialSource) -> CredentialSource:
        """The signer resolves credentials once per upstream call, just before sending it."""

        def current() -> Credentials | None:
            self.mark("upstream")
            return credentials()

        return current


class _MarkedDynamo(Dynamo):
    def __init__(self, log: CallLog, *, region: str, endpoint_url: str | None) -> None:
        super().__init__(region=region, endpoint_url=endpoint_url, transport=_Naming(log))
        self._log = log

    def call(self, operation: Callable[[WireClient], T]) -> T:
        started = time.perf_counter()
        try:
            return super().call(operation)
        finally:
            entry = getattr(self._log.calling, "entry", None)
            self._log.calling.entry = None
            if entry is not None:
                entry[2] = (time.perf_counter() - started) * 1000.0


class _Naming(httpx.BaseTransport):
    """Marks a call, by its operation's name, on its first attempt."""

    def __init__(self, log: CallLog) -> None:
        self._log = log
        self._inner = pooled_transport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        calling = self._log.calling
        if getattr(calling, "entry", None) is None:
            operation = request.headers["x-amz-target"].rpartition(".")[2]
            calling.entry = self._log.mark("dynamodb", operation)
        return self._inner.handle_request(request)


class _Pending:
    """Request ids whose answer is not closed yet (closing includes the usage write)."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._changed = threading.Condition()

    def add(self, request_id: str) -> None:
        with self._changed:
            self._ids.add(request_id)

    def done(self, request_id: str) -> None:
        with self._changed:
            self._ids.discard(request_id)
            self._changed.notify_all()

    def wait(self, request_id: str, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: request_id not in self._ids, timeout)


class _MarkedResponse(GatewayResponse):
    """The core's answer, marking `closed` when the door closes it, which the door does once
    the last byte is on the socket; the core writes usage in that `close()`."""

    __slots__ = ("_id", "_log", "_pending")

    def __init__(
        self, inner: GatewayResponse, log: CallLog, pending: _Pending, request_id: str
    ) -> None:
        super().__init__(inner.status, inner.headers, inner.body, inner.on_close)
        self._log, self._pending, self._id = log, pending, request_id
        pending.add(request_id)

    def close(self) -> None:
        self._log.mark("closed")
        try:
            super().close()
        finally:
            self._pending.done(self._id)


class Tap:
    """The local door's handler: the gateway plus the `/__bench/*` control answers."""

    def __init__(self, gateway: Gateway, log: CallLog, usage_writer: BackgroundLedger) -> None:
        self._gateway = gateway
        self._log = log
        self._usage_writer = usage_writer
        self._pending = _Pending()

    def precheck(self, request: GatewayRequest) -> GatewayError | None:
        if request.path.startswith(ADMIN_PREFIX):
            return None
        return self._gateway.precheck(request)

    def handle(self, request: GatewayRequest) -> GatewayResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return _json(self._admin(request.path.removeprefix(ADMIN_PREFIX), request.query))
        self._log.mark("request")
        response = self._gateway.handle(request)
        self._log.mark("returned")
        request_id = response.header(REQUEST_ID_HEADER) or ""
        return _MarkedResponse(response, self._log, self._pending, request_id)

    def _admin(self, action: str, query: str) -> dict[str, Any]:
        if action == "marks":
            return {"marks": self._log.drain()}
        if action == "settled":
            request_id = parse_qs(query).get("id", [""])[0]
            closed = self._pending.wait(request_id, timeout=30.0)
            return {"settled": closed and self._usage_writer.wait_idle(timeout=30.0)}
        if action == "memory/reset":
            return {"reset": reset_peak_memory(), **memory()}
        if action == "memory":
            return memory()
        if action == "cpu":
            return {"cpu_seconds": time.process_time()}  # ns resolution; /proc has 10 ms ticks
        return {"error": f"unknown action {action}"}


def memory() -> dict[str, int]:
    """Resident set and its high-water mark in KiB, from /proc (0 where not available)."""
    values = {"rss_kib": 0, "hwm_kib": 0}
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    values["rss_kib"] = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    values["hwm_kib"] = int(line.split()[1])
    except OSError:
        pass
    return values


def reset_peak_memory() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def _json(value: dict[str, Any]) -> GatewayResponse:
    return GatewayResponse(200, [("content-type", "application/json")], json.dumps(value).encode())
