"""The local door's HTTP/1.1 rules, over raw sockets against the real server (a recording core).

Framing (RFC 9112): what could smuggle a second request or confuse where a body ends is refused
with 400 and the connection closed, and the core never sees it. Every refusal the door makes is
JSON shaped for the path's API. Caps and deadlines hold without the door reading or waiting for
more than they allow; answers stream as the core yields them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from mantle_gateway.doors.local import Handles, LocalServer, serve
from mantle_gateway.errors import AuthenticationError, GatewayError
from mantle_gateway.messages import GatewayRequest, GatewayResponse
from tests.support.raw_http import Answer, Client, request

MAX_BODY = 2 * 1024 * 1024
GOOD_KEY = "mgw_good"


class Core:
    """Answers 200 with what it was sent; refuses in `precheck` a request without the good key."""

    def __init__(self) -> None:
        self.requests: list[GatewayRequest] = []
        self.prechecked: list[GatewayRequest] = []
        self.stream: Iterator[bytes] | None = None
        self.closed = threading.Event()

    def handle(self, request: GatewayRequest) -> GatewayResponse:
        self.requests.append(request)
        headers = [("content-type", "application/json")]
        if self.stream is not None:
            return GatewayResponse(200, headers, self.stream, on_close=self.closed.set)
        echo = {"method": request.method, "path": request.path, "size": len(request.body)}
        return GatewayResponse(200, headers, json.dumps(echo).encode(), on_close=self.closed.set)

    def precheck(self, request: GatewayRequest) -> GatewayError | None:
        self.prechecked.append(request)
        if request.headers.get("x-api-key") != GOOD_KEY:
            return AuthenticationError("Incorrect API key provided.")
        return None


def start(core: Handles, **options: Any) -> LocalServer:
    server = serve(core, "127.0.0.1", 0, MAX_BODY, **options)
    server.start_background()
    return server


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[LocalServer, list[Core]]]:
    """One door for the module; each test gets a fresh core behind it."""
    cores = [Core()]
    server = start(Relay(cores))
    yield server, cores
    server.shutdown()
    server.server_close()


class Relay:
    def __init__(self, cores: list[Core]) -> None:
        self._cores = cores

    def handle(self, request: GatewayRequest) -> GatewayResponse:
        return self._cores[0].handle(request)

    def precheck(self, request: GatewayRequest) -> GatewayError | None:
        return self._cores[0].precheck(request)


@pytest.fixture
def core(shared: tuple[LocalServer, list[Core]]) -> Core:
    shared[1][0] = Core()
    return shared[1][0]


@pytest.fixture
def door(shared: tuple[LocalServer, list[Core]], core: Core) -> LocalServer:
    return shared[0]


def exchange(door: LocalServer, data: bytes) -> tuple[Answer, bool]:
    """Send `data` on a new connection: the first answer, and whether the door then closed."""
    with Client(door.server_address) as client:
        client.send(data)
        answer = client.answer()
        return answer, client.closed()


def answer_to(door: LocalServer, data: bytes) -> Answer:
    """The first answer to `data` on a new connection (left open by the door or not)."""
    with Client(door.server_address) as client:
        client.send(data)
        return client.answer()


def assert_openai_error(answer: Answer, status: int) -> dict[str, Any]:
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.headers["content-type"] == "application/json"
    payload = answer.json()
    assert set(payload) == {"error"}
    assert set(payload["error"]) == {"message", "type", "code", "param"}
    assert payload["error"]["message"]
    error: dict[str, Any] = payload["error"]
    return error


def assert_anthropic_error(answer: Answer, status: int) -> dict[str, Any]:
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.headers["content-type"] == "application/json"
    payload = answer.json()
    assert payload["type"] == "error"
    assert set(payload["error"]) == {"type", "message"}
    error: dict[str, Any] = payload["error"]
    return error


# -- framing ---------------------------------------------------------------------------------

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize(
    "framing",
    [
        [b"Content-Length: 5", b"Content-Length: 40"],
        [b"Content-Length: 40", b"Content-Length: 5"],
        [b"Content-Length: 5, 40"],
        [b"Content-Length: 5", b"Content-Length: 5"],
        [b"Content-Length: 5", b"Transfer-Encoding: chunked"],
        [b"Transfer-Encoding: chunked", b"Content-Length: 5"],
        [b"Content-Length: -5"],
        [b"Content-Length: +5"],
        [b"Content-Length: 0x5"],
        [b"Content-Length: 5 5"],
        [b"Content-Length: \xef\xbc\x95"],  # a full-width digit five
        [b"Content-Length : 5"],
        [b"Content-Length: 5", b"X-No-Colon-Here"],
        [b"Content-Length: 5", b"X-Folded: a", b" continued"],
        [b"Content-Length: 5", b"X-Folded: a", b"\tcontinued"],
        [b"Content-Length: 5", b"Host: other"],
        [b"Content-Length: 5", b"X-Bad Name: a"],
    ],
)
def test_ambiguous_framing_gets_400_the_connection_closed_and_the_core_sees_nothing(
    door: LocalServer, core: Core, framing: list[bytes]
) -> None:
    # GIVEN a request whose framing could let the rest of its bytes run as a second request
    head = b"\r\n".join([b"POST /v1/chat/completions HTTP/1.1", b"Host: x", *framing])
    data = head + b"\r\n\r\nhello" + SMUGGLED + b"x" * 40

    # WHEN it is sent, THEN a JSON 400, the connection closed, and nothing reached the core
    answer, closed = exchange(door, data)
    assert_openai_error(answer, 400)
    assert answer.headers["connection"] == "close"
    assert closed
    assert core.requests == []


@pytest.mark.parametrize("coding", ["chunked", "gzip, chunked", "identity"])
def test_transfer_encoding_gets_411_without_reading_a_body(
    door: LocalServer, core: Core, coding: str
) -> None:
    data = request("POST", "/v1/x", headers=[("Transfer-Encoding", coding)], length=False)
    answer, closed = exchange(door, data + b"5\r\nhello\r\n0\r\n\r\n" + SMUGGLED)
    assert assert_openai_error(answer, 411)["code"] == "length_required"
    assert closed
    assert core.requests == []


@pytest.mark.parametrize(
    "line",
    [
        b"GET /x",
        b"GET  /x HTTP/1.1",
        b"GET /x HTTP/1.1 extra",
        b"/x HTTP/1.1",
        b"G(T /x HTTP/1.1",
        b"GET /x HTTPS/1.1",
        b"GET /x HTTP/1.1x",
        b"\x00GET /x HTTP/1.1",
        b"GET /a b HTTP/1.1",
    ],
)
def test_bad_request_lines_get_400_and_the_connection_closed(
    door: LocalServer, core: Core, line: bytes
) -> None:
    answer, closed = exchange(door, line + b"\r\nHost: x\r\n\r\n")
    assert_openai_error(answer, 400)
    assert closed
    assert core.requests == []


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/0.9", "HTTP/1.2"])
def test_other_http_versions_get_505(door: LocalServer, core: Core, version: str) -> None:
    answer, closed = exchange(door, request("GET", "/v1/models", version=version))
    assert assert_openai_error(answer, 505)["code"] == "http_version_not_supported"
    assert closed
    assert core.requests == []


@pytest.mark.parametrize("value", [b"a\x00b", b"a\rb", b"a\x0bb", b"a\x0cb"])
def test_a_header_value_http_forbids_gets_400_naming_the_header(
    door: LocalServer, core: Core, value: bytes
) -> None:
    data = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Custom: " + value + b"\r\n\r\n"
    answer = answer_to(door, data)
    assert assert_openai_error(answer, 400)["param"] == "x-custom"
    assert core.requests == []


def test_bytes_outside_visible_ascii_in_the_target_reach_the_core_percent_encoded(
    door: LocalServer, core: Core
) -> None:
    answer = answer_to(door, b"GET /v1/a\x00b\xffc\x7f?q=\x01 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.status == 200
    (seen,) = core.requests
    assert (seen.path, seen.query) == ("/v1/a%00b%FFc%7F", "q=%01")


def test_empty_lines_before_a_request_line_are_skipped(door: LocalServer, core: Core) -> None:
    answer = answer_to(door, b"\r\n\n\r\n" + request("GET", "/v1/models"))
    assert answer.status == 200
    assert [r.path for r in core.requests] == ["/v1/models"]


# -- caps and the shape of the door's refusals ---------------------------------------------


def too_long_line(path: str) -> bytes:
    return request("GET", path + "?" + "q" * 17_000)


def too_long_header(path: str) -> bytes:
    return request("GET", path, headers=[("X-Big", "v" * 66_000)])


def too_many_headers(path: str) -> bytes:
    return request("GET", path, headers=[(f"X-H{i}", "v") for i in range(101)])


def too_large_head(path: str) -> bytes:
    return request("GET", path, headers=[(f"X-Big-{i}", "v" * 60_000) for i in range(3)])


def too_large_body(path: str) -> bytes:
    return request("POST", path, headers=[("Content-Length", str(MAX_BODY + 1))], length=False)


def malformed(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n".encode()


REFUSALS = {
    "request line over 16 KiB": (too_long_line, 414, "uri_too_long"),
    "header line over 64 KiB": (too_long_header, 431, "headers_too_large"),
    "over 100 header lines": (too_many_headers, 431, "headers_too_large"),
    "head over 128 KiB": (too_large_head, 431, "headers_too_large"),
    "body over the limit": (too_large_body, 413, "request_too_large"),
    "malformed head": (malformed, 400, "invalid_request"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_the_doors_own_refusals_are_openai_json_and_close_the_connection(
    door: LocalServer, core: Core, case: str
) -> None:
    make, status, code = REFUSALS[case]
    answer, closed = exchange(door, make("/openai/v1/chat/completions"))
    assert assert_openai_error(answer, status)["code"] == code
    assert answer.headers["connection"] == "close"
    assert closed
    assert core.requests == []


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_under_anthropic_the_doors_refusals_are_anthropic_json(
    door: LocalServer, core: Core, case: str
) -> None:
    make, status, _ = REFUSALS[case]
    answer, closed = exchange(door, make("/anthropic/v1/messages"))
    error = assert_anthropic_error(answer, status)
    assert error["type"] in ("invalid_request_error", "request_too_large")
    assert closed


def test_a_request_line_that_never_ends_gets_414_once_over_the_cap(
    door: LocalServer, core: Core
) -> None:
    # GIVEN a request line longer than the cap, with no end in sight
    with Client(door.server_address) as client:
        client.send(b"GET /v1/" + b"a" * 20_000)
        # THEN 414 without the door waiting for the line's end
        answer = client.answer()
        assert_openai_error(answer, 414)
        assert client.closed()


def test_a_head_that_never_ends_gets_431_once_over_the_cap(door: LocalServer) -> None:
    with Client(door.server_address) as client:
        client.send(b"GET /v1/models HTTP/1.1\r\n" + b"X-Pad: aaaaaaaaaa\r\n" * 7_000)
        answer = client.answer()
        assert_openai_error(answer, 431)
        assert client.closed()


def test_a_head_request_refused_by_the_door_gets_no_body(door: LocalServer) -> None:
    with Client(door.server_address) as client:
        client.send(b"HEAD /v1/models HTTP/1.1\r\nHost: x\r\nbroken\r\n\r\n")
        answer = client.answer(head_only=True)
        assert answer.status == 400
        assert int(answer.headers["content-length"]) > 0
        assert client.closed()


# -- deadlines -------------------------------------------------------------------------------


def test_a_request_that_stops_arriving_gets_408(core: Core) -> None:
    server = start(core, request_timeout=0.3)
    try:
        with Client(server.server_address) as client:
            client.send(b"POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Le")
            assert_anthropic_error(client.answer(), 408)
            assert client.closed()
        with Client(server.server_address) as client:
            client.send(request("POST", "/v1/x", headers=[("Content-Length", "10")], length=False))
            client.send(b"12345")  # half the body, then silence
            assert assert_openai_error(client.answer(), 408)["code"] == "request_timeout"
            assert client.closed()
    finally:
        server.shutdown()
    assert core.requests == []


def test_a_slow_loris_head_gets_408_however_steadily_it_trickles(core: Core) -> None:
    # GIVEN a door that wants whole requests within 0.5 s
    server = start(core, request_timeout=0.5)
    try:
        with Client(server.server_address) as client:
            client.send(b"GET /v1/models HTTP/1.1\r\n")
            client.sock.settimeout(0.05)
            received = b""
            # WHEN a header byte keeps coming every 50 ms, never ending the head (for up to 10 s)
            for _ in range(200):
                client.send(b"X")
                try:
                    received = client.sock.recv(65536)
                except TimeoutError:
                    continue
                break
            # THEN the door answered 408 before the head ended
            assert received.startswith(b"HTTP/1.1 408 "), received[:100]
    finally:
        server.shutdown()
    assert core.requests == []


def test_an_idle_keep_alive_connection_is_closed_quietly(core: Core) -> None:
    server = start(core, idle_timeout=0.3)
    try:
        with Client(server.server_address) as client:
            client.send(request("GET", "/v1/models"))
            assert client.answer().status == 200
            assert client.closed()  # after the idle timeout, with no bytes
        with Client(server.server_address) as silent:
            assert silent.closed()
    finally:
        server.shutdown()


# -- the connection cap ----------------------------------------------------------------------


def door_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


def test_idle_connections_past_the_cap_wait_for_a_slot_and_use_no_thread(core: Core) -> None:
    # GIVEN a door serving at most 3 connections, and 30 idle connections to it
    server = start(core, max_connections=3)
    before = set(door_threads())

    def new_threads() -> int:
        return len(set(door_threads()) - before)

    idle = [Client(server.server_address) for _ in range(30)]
    try:
        end = time.monotonic() + 10
        while new_threads() < 3 and time.monotonic() < end:
            time.sleep(0.01)
        # THEN 3 connection threads, not 30
        assert new_threads() == 3
        # AND a request on a waiting connection is not served while the first 3 stay open
        waiting = idle[-1]
        waiting.send(request("GET", "/v1/models"))
        waiting.sock.settimeout(0.5)
        with pytest.raises(AssertionError, match="a hang"):
            waiting.answer()
        assert new_threads() == 3
        # WHEN the connections ahead of it close, THEN it is served
        for client in idle[:-1]:
            client.sock.close()
        waiting.sock.settimeout(10)
        assert waiting.answer().status == 200
    finally:
        for client in idle:
            client.sock.close()
        server.shutdown()


# -- the key before a large body -------------------------------------------------------------


def big_post(key: str, size: int, *extra: tuple[str, str]) -> bytes:
    headers = [("x-api-key", key), ("Content-Length", str(size)), *extra]
    return request("POST", "/v1/chat/completions", headers=headers, length=False)


def test_a_large_body_with_a_bad_key_is_refused_before_it_is_sent(
    door: LocalServer, core: Core
) -> None:
    # GIVEN only the head of a 1 MiB request with a bad key (its body never sent)
    with Client(door.server_address) as client:
        client.send(big_post("mgw_bad", 1024 * 1024))
        # THEN the door answers 401 at once, and closes
        assert assert_openai_error(client.answer(), 401)["type"] == "authentication_error"
        assert client.closed()
    assert core.requests == []
    assert len(core.prechecked) == 1


def test_a_large_body_with_a_good_key_is_read_after_the_check(
    door: LocalServer, core: Core
) -> None:
    body = b"x" * (1024 * 1024)
    with Client(door.server_address) as client:
        client.send(big_post(GOOD_KEY, len(body)) + body)
        answer = client.answer()
    assert answer.status == 200
    assert answer.json()["size"] == len(body)
    assert len(core.prechecked) == 1


def test_a_small_body_is_not_prechecked(door: LocalServer, core: Core) -> None:
    answer = answer_to(door, big_post("mgw_bad", 10) + b"0123456789")
    assert answer.status == 200  # the core itself decides (here: answers)
    assert core.prechecked == []


def test_expect_100_continue_is_answered_after_the_check(door: LocalServer, core: Core) -> None:
    body = b'{"model":"m"}'
    expect = ("Expect", "100-continue")
    with Client(door.server_address) as client:
        client.send(big_post(GOOD_KEY, len(body), expect))
        interim = client.answer()
        assert (interim.status, interim.body) == (100, b"")
        client.send(body)
        assert client.answer().json()["size"] == len(body)
    with Client(door.server_address) as client:
        client.send(big_post("mgw_bad", len(body), expect))
        assert_openai_error(client.answer(), 401)  # no 100 first
        assert client.closed()


# -- answers: keep-alive, pipelining, HEAD, HTTP/1.0, streaming --------------------------------


def test_pipelined_requests_on_one_connection_are_answered_in_order(
    door: LocalServer, core: Core
) -> None:
    data = request("POST", "/v1/a", body=b"one") + request("POST", "/v1/b", body=b"three")
    with Client(door.server_address) as client:
        client.send(data + request("GET", "/v1/c"))
        answers = [client.answer().json() for _ in range(3)]
    assert [(a["path"], a["size"]) for a in answers] == [("/v1/a", 3), ("/v1/b", 5), ("/v1/c", 0)]


def test_a_head_answer_has_the_length_but_no_body(door: LocalServer) -> None:
    with Client(door.server_address) as client:
        client.send(request("HEAD", "/v1/models") + request("GET", "/v1/models"))
        head = client.answer(head_only=True)
        after = client.answer()  # the next answer starts right where the HEAD answer ended
    echo = {"method": "HEAD", "path": "/v1/models", "size": 0}
    assert head.status == after.status == 200
    assert int(head.headers["content-length"]) == len(json.dumps(echo))
    assert after.json()["method"] == "GET"


def test_an_http_1_0_client_gets_a_close_delimited_stream(door: LocalServer, core: Core) -> None:
    core.stream = iter([b"data: 1\n\n", b"data: 2\n\n"])
    with Client(door.server_address) as client:
        client.send(request("GET", "/v1/models", version="HTTP/1.0"))
        answer = client.answer()
    assert "transfer-encoding" not in answer.headers
    assert answer.body == b"data: 1\n\ndata: 2\n\n"


def test_an_http_1_0_client_gets_a_whole_answer_then_the_connection_closes(
    door: LocalServer,
) -> None:
    with Client(door.server_address) as client:
        client.send(request("GET", "/v1/models", version="HTTP/1.0"))
        answer = client.answer()
        assert answer.json()["path"] == "/v1/models"
        assert client.closed()


def test_a_client_gone_mid_stream_closes_the_answer(door: LocalServer, core: Core) -> None:
    def endless() -> Iterator[bytes]:
        while True:
            yield b"data: tick\n\n"
            time.sleep(0.01)

    core.stream = endless()
    with Client(door.server_address) as client:
        client.send(request("GET", "/v1/models"))
        client.sock.recv(100)  # the stream has started
    assert core.closed.wait(10), "the answer was never closed after the client left"


# -- hostile heads, generated ----------------------------------------------------------------

VALID = request("POST", "/v1/chat/completions", headers=[("x-api-key", "k")], body=b"{}")


@hypothesis.settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, len(VALID) - 1),
            st.integers(0, 4),
            st.sampled_from([b"", b" ", b"\r", b"\n", b"\r\n", b":", b"\x00", b"\t", b",", b"9"]),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mangled_requests_get_json_or_are_served_never_a_5xx_or_html(
    door: LocalServer, edits: list[tuple[int, int, bytes]]
) -> None:
    data = VALID
    for at, cut, insert in edits:
        data = data[:at] + insert + data[at + cut :]
    with Client(door.server_address, timeout=5) as client:
        client.send(data)
        client.sock.shutdown(1)  # nothing more is coming: a door waiting for more sees the end
        raw = client.rest()
    if not raw:
        return  # the head never ended (or asked for more body): closed without an answer
    first = Client.replay(raw).answer()
    assert first.status < 500 or first.status == 505, first.head
    if first.status >= 400:
        assert first.headers["content-type"] == "application/json"
        assert "error" in first.json()
