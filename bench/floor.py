"""The floor under the back-to-back row: what any gateway adds on this machine before its own work.

A bare forwarder, in a process of its own as the gateway is, doing only what the row's target
lets a gateway wait on and what no gateway can leave out: it reads a request off a keep-alive
connection, makes the gateway's admission write through the gateway's own `LimitsStore`,
forwards the request signed to the simulator in one write, relays the answer in one write, and
hands the usage record to the gateway's own background writer, which writes it as the gateway
does. Nothing else: no HTTP library, no key check, no JSON, no pricing, no log line. Its
DynamoDB wait is timed as the gateway's is (`bench.tap`: each call of the Dynamo it uses, whole,
between the request's mark and the upstream call's).

Its added latency minus its DynamoDB wait is the share of the row's "+ 2 ms" that this machine
takes before any gateway code runs: two more loopback hops, and the simulator and the client
waking after idling through the DynamoDB wait, which the direct side, sending back to back,
never does (issue 12; docs/decisions/0005). Trusted input only: it serves the bench's client.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

from bench.tap import CallLog
from mantle_gateway.settings import Settings
from mantle_gateway.simulator import SIMULATOR_ACCESS_KEY, SIMULATOR_SECRET_KEY
from mantle_gateway.store.background_ledger import BackgroundLedger
from mantle_gateway.store.ledger import Ledger
from mantle_gateway.store.limits import Ask, LimitsStore
from mantle_gateway.upstream.signing import SigV4Signer, static_credentials
from mantle_gateway.usage import TokenCounts, UsageRecord

MARKS_PATH = b"/__floor/marks"
"""GET: the `CallLog` marks since the last such GET, as the tap's `/__bench/marks` gives the
gateway's (`bench.roundtrips.before_upstream_ms` reads both)."""

_KEY_ID = "key_floor"
_MODEL = "openai.gpt-oss-120b"
_RESERVED, _RESERVED_TOKENS = Decimal("0.00001395"), 45
"""What the gateway reserves for the bench's chat request: its worst case, in USD at this model's
price and in tokens (the rate window's tpm)."""
_COST = Decimal("0.00001035")
_RPM, _TPM, _BUDGET = 1_000_000, 1_000_000_000, Decimal(1_000_000)
"""The limits `Stack.issue_key` gives the gateway's keys, so the write has the same conditions."""


class Floor(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, simulator_url: str, settings: Settings) -> None:
        super().__init__(("127.0.0.1", 0), _Connection)
        self.log = CallLog()
        dynamo = self.log.dynamo(
            region=settings.region, endpoint_url=settings.dynamodb_endpoint_url
        )
        self.limits = LimitsStore(dynamo, settings.limits_table)
        self.usage = BackgroundLedger(
            Ledger(dynamo, usage_table=settings.usage_table, limits_table=settings.limits_table)
        )
        self.signer = SigV4Signer(
            static_credentials(SIMULATOR_ACCESS_KEY, SIMULATOR_SECRET_KEY), settings.region
        )
        self.upstream = urlsplit(simulator_url)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Connection(socketserver.BaseRequestHandler):
    server: Floor

    def handle(self) -> None:
        client: socket.socket = self.request
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream = self.server.upstream
        simulator = socket.create_connection((upstream.hostname, upstream.port))
        simulator.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        incoming, answers = _Messages(client), _Messages(simulator)
        with simulator:
            while (request := incoming.next()) is not None:
                head, body = request
                if head.split(b" ", 2)[1] == MARKS_PATH:
                    marks = json.dumps(self.server.log.drain()).encode()
                    client.sendall(_message(b"HTTP/1.1 200 OK", marks))
                    continue
                self._forward(client, simulator, answers, body)

    def _forward(
        self, client: socket.socket, simulator: socket.socket, answers: _Messages, body: bytes
    ) -> None:
        server, now, request_id = self.server, datetime.now(UTC), uuid.uuid4().hex
        start = time.perf_counter()
        server.log.mark("request")
        ask = Ask(
            _KEY_ID,
            now.strftime("%Y-%m"),
            now,
            _RPM,
            _TPM,
            _BUDGET,
            _RESERVED,
            tokens=_RESERVED_TOKENS,
            request_id=request_id,
            expires=Decimal(int(now.timestamp()) + 900),
        )
        verdict = server.limits.admit(ask)
        server.log.mark("upstream")
        url = f"{server.upstream.scheme}://{server.upstream.netloc}/v1/chat/completions"
        headers = server.signer.sign("POST", url, {"content-type": "application/json"}, body)
        head = f"POST /v1/chat/completions HTTP/1.1\r\nhost: {server.upstream.netloc}"
        simulator.sendall(_message(head.encode(), body, headers))
        answer = answers.next()
        assert answer is not None, "the simulator closed the connection"
        client.sendall(
            _message(b"HTTP/1.1 200 OK", answer[1], {"content-type": "application/json"})
        )
        record = UsageRecord(
            request_id,
            now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            _KEY_ID,
            _MODEL,
            TokenCounts(input=5, output=16),
            _COST,
            "ok",
            int((time.perf_counter() - start) * 1000),
            "floor",
            False,
        )
        server.usage.record(record, verdict.reservation)


class _Messages:
    """HTTP/1.1 messages framed by Content-Length, one after another, off one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def next(self) -> tuple[bytes, bytes] | None:
        """(head, body), or None once the peer closed."""
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if not (data := self._sock.recv(65536)):
                return None
            self._buffer += data
        head = self._buffer[:end]
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        start = end + 4
        while len(self._buffer) < start + length:
            self._buffer += self._sock.recv(65536)
        body, self._buffer = self._buffer[start : start + length], self._buffer[start + length :]
        return head, body


def _message(first_line: bytes, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    fields = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    return b"%s\r\n%scontent-length: %d\r\n\r\n%s" % (first_line, fields.encode(), len(body), body)


def serve(simulator_url: str, settings: Settings) -> Floor:
    server = Floor(simulator_url, settings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
