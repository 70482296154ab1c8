"""The server itself: lifecycle, HTTP/1.1 plumbing, recording, cheap import."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import mantle_gateway
from mantle_gateway.simulator import (
    SIMULATOR_ACCESS_KEY,
    SIMULATOR_REGION,
    SIMULATOR_SECRET_KEY,
    Simulator,
)

CHAT = {"model": "openai.gpt-oss-20b", "messages": [{"role": "user", "content": "a b c"}]}


def test_lifecycle_and_url() -> None:
    sim = Simulator()
    with pytest.raises(RuntimeError):
        _ = sim.url
    assert sim.start() is sim
    assert sim.start() is sim  # idempotent
    port = sim.port
    assert sim.url == f"http://127.0.0.1:{port}"
    sim.stop()
    sim.stop()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models")


def test_two_simulators_get_their_own_ports() -> None:
    with Simulator() as first, Simulator() as second:
        assert first.port != second.port


def test_default_credentials_are_exported() -> None:
    sim = Simulator()
    assert SIMULATOR_REGION == "us-east-1"
    assert sim.region == SIMULATOR_REGION
    assert sim.credentials == {SIMULATOR_ACCESS_KEY: SIMULATOR_SECRET_KEY}


def test_requests_are_recorded_with_headers_and_body(sim: Simulator, client: httpx.Client) -> None:
    response = client.post(
        "/v1/chat/completions",
        json=CHAT,
        headers={"OpenAI-Project": "proj_1", "X-Amzn-Bedrock-Trace": "ENABLED"},
    )
    seen = sim.requests[-1]
    assert seen.method == "POST"
    assert seen.headers["openai-project"] == "proj_1"
    assert seen.headers["x-amzn-bedrock-trace"] == "ENABLED"
    assert seen.json() == CHAT
    assert seen.request_id == response.headers["x-request-id"]
    assert seen.fault is None
    assert seen.peer.startswith("127.0.0.1:")


def test_requests_is_a_snapshot(sim: Simulator, client: httpx.Client) -> None:
    before = sim.requests
    client.get("/v1/models")
    assert before == []
    assert len(sim.requests) == 1


def test_the_request_log_keeps_the_recent_requests_and_counts_them_all(
    sim: Simulator, client: httpx.Client
) -> None:
    # GIVEN a log bounded to 5 requests and 2 KiB of bodies
    sim.request_log.max_requests, sim.request_log.max_body_bytes = 5, 2048
    before = sim.request_count

    # WHEN 12 chats with ~300-byte bodies arrive
    for n in range(12):
        client.post("/v1/chat/completions", json={**CHAT, "user": f"u{n:02d}" + "x" * 250})

    # THEN every one is counted and the 5 newest are kept
    assert sim.request_count == before + 12
    assert [seen.json()["user"][:3] for seen in sim.requests] == [f"u{n:02d}" for n in range(7, 12)]
    assert sim.request_log.body_bytes == sum(len(seen.body) for seen in sim.requests)

    # WHEN a body over the bytes bound arrives, THEN it is kept alone
    big = {**CHAT, "user": "big" + "x" * 3000}
    client.post("/v1/chat/completions", json=big)
    assert [seen.json() for seen in sim.requests] == [big]

    # WHEN two small ones follow, THEN the big one is dropped to keep under the bytes bound
    for n in (12, 13):
        client.post("/v1/chat/completions", json={**CHAT, "user": f"u{n}"})
    assert [seen.json()["user"] for seen in sim.requests] == ["u12", "u13"]
    assert [seen.json()["user"] for seen in sim.requests_since(before + 14)] == ["u13"]
    assert len(sim.requests_since(before)) == 2  # what is left of an older range


def test_the_default_bounds(sim: Simulator) -> None:
    assert (sim.request_log.max_requests, sim.request_log.max_body_bytes) == (1000, 16 << 20)
    assert (sim.response_store.max_items, sim.response_store.max_bytes) == (1000, 64 << 20)


def _raw_exchange(sim: Simulator, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as conn:
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)
        chunks: list[bytes] = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_chunked_request_body_is_read() -> None:
    with Simulator(bearer_token="t") as sim:
        body = json.dumps(CHAT).encode()
        half = len(body) // 2
        request = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + b"%x\r\n%b\r\n%x\r\n%b\r\n0\r\n\r\n"
            % (half, body[:half], len(body) - half, body[half:])
        )
        answer = _raw_exchange(sim, request)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert sim.requests[-1].body == body


def test_malformed_chunked_body_is_400() -> None:
    with Simulator(bearer_token="t") as sim:
        request = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"
        )
        answer = _raw_exchange(sim, request)
    assert answer.startswith(b"HTTP/1.1 400 ")


@pytest.fixture
def idle_connection(sim: Simulator) -> Iterator[socket.socket]:
    conn = socket.create_connection(("127.0.0.1", sim.port), timeout=5)
    yield conn
    conn.close()


def test_stop_closes_idle_keep_alive_connections(
    sim: Simulator, idle_connection: socket.socket
) -> None:
    sim.bearer_token = "t"
    idle_connection.sendall(
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n"
    )
    received = b""
    while not received.endswith(b'"object":"list"}'):
        received += idle_connection.recv(65536)
    assert received.startswith(b"HTTP/1.1 200 ")
    sim.stop()
    idle_connection.settimeout(2)
    assert idle_connection.recv(65536) == b""  # closed by the server, not left hanging


def test_import_is_cheap() -> None:
    """The package must not pull heavy libraries: the gateway CLI imports it on every start."""
    code = (
        "import sys, mantle_gateway.simulator\n"
        "heavy = {'httpx', 'botocore', 'boto3', 'openai', 'pydantic'} & set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(Path(mantle_gateway.__file__).parents[1])},
    )
    assert result.stdout.strip() == "[]"
