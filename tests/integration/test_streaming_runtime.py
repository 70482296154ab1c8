"""The streaming runtime layer, run as Lambda runs it, checked byte for byte against the Runtime
API emulator: headers, prelude, eight NUL bytes, chunk framing, order, trailers, error routes,
warm state, deadline, buffered mode, and the real Lambda entry on top.

Timing is asserted by order of events (a handler that waits for the test's signal), never by
wall-clock thresholds.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.runtime_emulator import WRAPPER, Posted, RuntimeEmulator

EVENTS = Path(__file__).resolve().parents[1] / "support" / "events"
PYTHON_313 = Path.home() / ".pyenv" / "versions" / "3.13.0" / "bin" / "python3.13"
RESPONSE_HEADERS = {
    "Lambda-Runtime-Function-Response-Mode": "streaming",
    "Transfer-Encoding": "chunked",
    "Trailer": "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
    "Content-Type": "application/vnd.awslambda.http-integration-response",
}
NULS = b"\x00" * 8


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def framed(*pieces: bytes) -> bytes:
    return b"".join(b"%X\r\n%b\r\n" % (len(p), p) for p in pieces)


def error_post(emulator: RuntimeEmulator, path: str, error_type: str, body: bytes) -> bytes:
    """An error POST exactly as the runtime must send it: http.client's request line and its
    Host, Accept-Encoding and Content-Length, then the error type and the JSON content type."""
    return (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {emulator.address}\r\n"
        "Accept-Encoding: identity\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Lambda-Runtime-Function-Error-Type: {error_type}\r\n"
        "Content-Type: application/json\r\n"
        "\r\n"
    ).encode() + body


def error_document(message: str, error_type: str, stack_trace: list[str]) -> bytes:
    """The Runtime API's error document, compact, in the documented field order."""
    document = {"errorMessage": message, "errorType": error_type, "stackTrace": stack_trace}
    return json.dumps(document, separators=(",", ":")).encode()


def log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def settled_log(emulator: RuntimeEmulator, path: Path) -> list[str]:
    """The body's log once the runtime has asked for its next event: all it does is done."""
    emulator.wait_idle()
    return log_lines(path)


@pytest.fixture(scope="module")
def failing() -> Iterator[RuntimeEmulator]:
    with RuntimeEmulator("failing.handler") as emulator:
        yield emulator


@pytest.fixture(scope="module")
def answers() -> Iterator[RuntimeEmulator]:
    with RuntimeEmulator("answers.handler") as emulator:
        yield emulator


@pytest.fixture(scope="module")
def buffered() -> Iterator[RuntimeEmulator]:
    with RuntimeEmulator(
        "answers.handler", env={"STREAMING_RUNTIME_RESPONSE_MODE": "buffered"}
    ) as emulator:
        yield emulator


def test_exec_wrapper_is_executable_as_lambda_requires() -> None:
    assert os.access(WRAPPER, os.X_OK)


def test_stream_is_posted_with_the_streaming_headers_and_exact_framing() -> None:
    with RuntimeEmulator("sse_stream.handler") as emulator:
        invocation = emulator.invoke({"count": 2})
        response = invocation.streamed()

    assert response.path == f"/2018-06-01/runtime/invocation/{invocation.request_id}/response"
    for name, value in RESPONSE_HEADERS.items():
        assert response.header(name) == value
    assert response.header("Content-Length") is None
    prelude = (
        b'{"statusCode":200,"headers":{"content-type":"text/event-stream",'
        b'"cache-control":"no-cache"},"cookies":[]}'
    )
    assert bytes(response.raw) == (
        framed(prelude + NULS, b'id: 0\ndata: {"n": 0}\n\n', b'id: 1\ndata: {"n": 1}\n\n')
        + framed(b"data: [DONE]\n\n")
        + b"0\r\n\r\n"
    )
    assert response.trailers == []
    assert response.framing_errors == []


def test_body_is_prelude_json_then_exactly_eight_nuls_then_the_payload() -> None:
    with RuntimeEmulator("sse_stream.handler") as emulator:
        invocation = emulator.invoke({"count": 1})
        body = invocation.streamed().body

    end = body.index(b"}\x00") + 1
    assert json.loads(body[:end]) == {
        "statusCode": 200,
        "headers": {"content-type": "text/event-stream", "cache-control": "no-cache"},
        "cookies": [],
    }
    assert body[end : end + 8] == NULS
    assert body[end + 8 :] == b'id: 0\ndata: {"n": 0}\n\ndata: [DONE]\n\n'
    assert b"\x00" not in body[:end]


def test_thousand_events_arrive_complete_in_order_one_chunk_each(tmp_path: Path) -> None:
    close_log = tmp_path / "close.log"
    with RuntimeEmulator("sse_stream.handler") as emulator:
        response = emulator.invoke({"count": 1000, "close_log": str(close_log)}).streamed()
        lines = settled_log(emulator, close_log)

    events = [chunk.data for chunk in response.chunks[1:]]
    assert events[:-1] == [f'id: {n}\ndata: {{"n": {n}}}\n\n'.encode() for n in range(1000)]
    assert events[-1] == b"data: [DONE]\n\n"
    arrivals = [chunk.arrived for chunk in response.chunks]
    assert arrivals == sorted(arrivals)
    assert response.complete
    assert response.framing_errors == []
    # The body was pulled to its end, then closed once, after the response was complete.
    assert lines[-2:] == ["end", "close"]
    assert lines.count("close") == 1


def test_first_event_reaches_lambda_before_the_handler_produces_the_last(tmp_path: Path) -> None:
    signal, produced_last = tmp_path / "signal", tmp_path / "produced_last"
    with RuntimeEmulator("gated_stream.handler") as emulator:
        invocation = emulator.invoke({"signal": str(signal), "produced_last": str(produced_last)})

        # WHEN the first event has arrived at the Runtime API
        chunks = invocation.wait_for_chunks(2)
        # THEN the handler has not produced the last one yet: it waits for our signal
        assert chunks[1].data == b"data: first\n\n"
        assert not produced_last.exists()
        assert invocation.response is not None
        assert not invocation.response.complete

        signal.touch()
        response = invocation.streamed()

    assert [c.data for c in response.chunks[1:]] == [b"data: first\n\n", b"data: last\n\n"]
    assert response.chunks[1].arrived <= response.chunks[2].arrived


def test_failure_mid_stream_ends_with_the_zero_chunk_and_both_trailers(
    failing: RuntimeEmulator, tmp_path: Path
) -> None:
    close_log = tmp_path / "close.log"
    invocation = failing.invoke({"where": "mid_stream", "close_log": str(close_log)})
    response = invocation.streamed()

    assert invocation.error is None
    prelude, payload = invocation.prelude_and_payload()
    assert prelude["statusCode"] == 200
    assert payload == b"data: one\n\ndata: two\n\n"
    error_type = response.trailer("Lambda-Runtime-Function-Error-Type")
    error_body = response.trailer("Lambda-Runtime-Function-Error-Body")
    assert error_type == "UpstreamParserError"
    assert error_body is not None
    expected_head = (
        f"POST {response.path} HTTP/1.1\r\n"
        f"Host: {failing.address}\r\n"
        "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
        "Content-Type: application/vnd.awslambda.http-integration-response\r\n"
        "\r\n"
    )
    assert response.head == expected_head.encode()
    assert bytes(response.raw).endswith(
        b"0\r\nLambda-Runtime-Function-Error-Type: UpstreamParserError\r\n"
        b"Lambda-Runtime-Function-Error-Body: " + error_body.encode() + b"\r\n\r\n"
    )
    document = json.loads(base64.b64decode(error_body, validate=True))
    assert document["errorType"] == "UpstreamParserError"
    assert document["errorMessage"] == "upstream parser exploded"
    assert any("failing.py" in frame for frame in document["stackTrace"])
    assert not any("streaming_runtime" in frame for frame in document["stackTrace"])
    assert settled_log(failing, close_log).count("close") == 1


@pytest.mark.parametrize(
    ("where", "error_type"),
    [
        ("handler", "ValueError"),
        ("first_piece", "UpstreamParserError"),
        ("bad_status", "ContractError"),
        ("big_prelude", "ContractError"),
        ("unserializable", "Runtime.MarshalError"),
    ],
)
def test_error_before_the_first_byte_goes_to_the_error_endpoint(
    failing: RuntimeEmulator, tmp_path: Path, where: str, error_type: str
) -> None:
    close_log = tmp_path / "close.log"
    invocation = failing.invoke({"where": where, "close_log": str(close_log)}).wait_done()

    assert invocation.response is None
    error = invocation.error
    assert error is not None
    assert error.path == f"/2018-06-01/runtime/invocation/{invocation.request_id}/error"
    # The header names the same type as the document: the exception's class, never a fixed
    # "Unhandled".
    assert error.header("Lambda-Runtime-Function-Error-Type") == error_type
    document = error.json()
    assert document["errorType"] == error_type
    assert isinstance(document["errorMessage"], str)
    assert isinstance(document["stackTrace"], list)
    body = error_document(document["errorMessage"], error_type, document["stackTrace"])
    assert error.head + bytes(error.raw) == error_post(failing, error.path, error_type, body)
    if where in ("first_piece", "bad_status", "big_prelude"):
        assert settled_log(failing, close_log).count("close") == 1


def test_handler_exception_is_posted_byte_for_byte(failing: RuntimeEmulator) -> None:
    invocation = failing.invoke({"where": "handler"}).wait_done()

    error = invocation.error
    assert error is not None
    frames = error.json()["stackTrace"]
    assert len(frames) == 1
    assert 'failing.py", line ' in frames[0]
    assert frames[0].endswith('raise ValueError("handler refused the event")')
    body = error_document("handler refused the event", "ValueError", frames)
    assert error.head + bytes(error.raw) == error_post(failing, error.path, "ValueError", body)


def test_process_survives_errors_and_serves_the_next_event(failing: RuntimeEmulator) -> None:
    failing.invoke({"where": "handler"}).wait_done()

    invocation = failing.invoke({"where": "mid_stream"}).wait_done()

    assert invocation.response is not None
    assert failing.exit_code() is None


def test_warm_process_keeps_module_state_between_invocations() -> None:
    with RuntimeEmulator("probe.handler") as emulator:
        first = emulator.invoke({}).streamed().json()
        second = emulator.invoke({}).streamed().json()

    assert first["pid"] == second["pid"]
    assert (first["imports"], second["imports"]) == (1, 1)
    assert (first["invocations"], second["invocations"]) == (1, 2)


def test_deadline_trace_and_context_reach_the_handler() -> None:
    deadline_ms = int(time.time() * 1000) + 123_456
    with RuntimeEmulator("probe.handler") as emulator:
        traced = emulator.invoke({}, deadline_ms=deadline_ms, trace_id="Root=1-abc;Sampled=1")
        seen = traced.streamed().json()
        untraced = emulator.invoke({}, trace_id=None).streamed().json()

    assert 0 < seen["remaining_ms"] <= 123_456
    assert abs(seen["now_ms"] + seen["remaining_ms"] - deadline_ms) <= 1000
    assert seen["trace_id"] == "Root=1-abc;Sampled=1"
    assert untraced["trace_id"] is None
    assert seen["aws_request_id"] == traced.request_id
    assert seen["invoked_function_arn"].endswith(":function:mantle-gateway-test")
    assert seen["function_name"] == "mantle-gateway-test"
    assert seen["memory_limit_in_mb"] == 512
    assert seen["log_group_name"] == "/aws/lambda/mantle-gateway-test"
    assert seen["log_stream_name"].startswith("2026/01/01/")
    # Powertools' Logger.inject_lambda_context read the same context.
    assert seen["powertools"] == {
        "function_name": "mantle-gateway-test",
        "function_request_id": traced.request_id,
    }


def test_plain_result_is_posted_buffered_as_json(answers: RuntimeEmulator) -> None:
    response = answers.invoke({"case": "plain"}).streamed()

    assert response.header("Lambda-Runtime-Function-Response-Mode") is None
    assert response.header("Transfer-Encoding") is None
    assert response.header("Content-Type") == "application/json"
    assert response.json() == {"ok": True, "items": [1, 2, 3]}


def test_empty_pieces_are_never_framed_and_cookies_reach_the_prelude(
    answers: RuntimeEmulator, tmp_path: Path
) -> None:
    close_log = tmp_path / "close.log"
    invocation = answers.invoke({"case": "sse", "close_log": str(close_log)})
    response = invocation.streamed()

    assert [len(chunk.data) > 0 for chunk in response.chunks] == [True] * 4
    prelude, payload = invocation.prelude_and_payload()
    assert prelude["cookies"] == ["a=1; Path=/", "b=2; Path=/"]
    assert payload == b"data: one\n\ndata: two\n\ndata: [DONE]\n\n"


@pytest.mark.parametrize(
    ("case", "prelude", "payload"),
    [
        ("rest", {"statusCode": 429, "multiValueHeaders": {"set-cookie": ["a=1", "b=2"]}}, None),
        ("binary", {"statusCode": 201}, b"\xff\x00\xfe\x01"),
        ("base64_text", {"statusCode": 200}, b"decoded bytes"),
        ("empty", {"statusCode": 204, "headers": {}}, b""),
    ],
)
def test_http_answers_of_every_shape_stream(
    answers: RuntimeEmulator, case: str, prelude: dict[str, Any], payload: bytes | None
) -> None:
    seen_prelude, seen_payload = answers.invoke({"case": case}).prelude_and_payload()

    assert prelude.items() <= seen_prelude.items()
    assert "body" not in seen_prelude
    assert "isBase64Encoded" not in seen_prelude
    if payload is not None:
        assert seen_payload == payload


def test_buffered_mode_posts_one_proxy_document_with_text_body(
    buffered: RuntimeEmulator, tmp_path: Path
) -> None:
    close_log = tmp_path / "close.log"
    response = buffered.invoke({"case": "sse", "close_log": str(close_log)}).streamed()

    assert response.header("Lambda-Runtime-Function-Response-Mode") is None
    assert response.header("Content-Type") == "application/json"
    assert response.json() == {
        "statusCode": 200,
        "headers": {"content-type": "text/event-stream"},
        "cookies": ["a=1; Path=/", "b=2; Path=/"],
        "body": "data: one\n\ndata: two\n\ndata: [DONE]\n\n",
        "isBase64Encoded": False,
    }
    assert settled_log(buffered, close_log)[-2:] == ["end", "close"]


def test_buffered_mode_base64_encodes_binary_and_keeps_rest_shapes(
    buffered: RuntimeEmulator,
) -> None:
    binary = buffered.invoke({"case": "binary"}).streamed().json()
    rest = buffered.invoke({"case": "rest"}).streamed().json()

    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\xff\x00\xfe\x01"
    assert rest == {
        "statusCode": 429,
        "headers": {"content-type": "application/json"},
        "multiValueHeaders": {"set-cookie": ["a=1", "b=2"]},
        "body": '{"error":{"message":"slow down"}}',
        "isBase64Encoded": False,
    }


def test_buffered_mode_reports_a_body_failure_to_the_error_endpoint() -> None:
    with RuntimeEmulator(
        "failing.handler", env={"STREAMING_RUNTIME_RESPONSE_MODE": "buffered"}
    ) as emulator:
        invocation = emulator.invoke({"where": "mid_stream"}).wait_done()

    assert invocation.response is None
    assert invocation.error is not None
    assert invocation.error.json()["errorType"] == "UpstreamParserError"


def test_dropped_connection_closes_the_body_and_the_next_event_is_served(tmp_path: Path) -> None:
    close_log = tmp_path / "close.log"
    with RuntimeEmulator("endless.handler") as emulator:
        cut = emulator.invoke({"close_log": str(close_log)}, drop_after_chunks=3)

        lines = settled_log(emulator, close_log)
        assert lines[-1] == "close"
        assert "end" not in lines
        assert cut.response is not None
        assert not cut.response.complete

        after = emulator.invoke({"count": 2}).streamed()

    assert len(after.chunks) == 3
    assert after.complete


@pytest.mark.parametrize(
    ("handler", "env", "error_type"),
    [
        ("no_such_module.handler", {}, "Runtime.ImportModuleError"),
        ("answers.no_such_function", {}, "Runtime.HandlerNotFound"),
        ("nodots", {}, "Runtime.MalformedHandlerName"),
        (
            "answers.handler",
            {"STREAMING_RUNTIME_RESPONSE_MODE": "sometimes"},
            "Runtime.ConfigInvalid",
        ),
        # The module's own code raised while it was imported: its class, as the managed
        # runtime reports it.
        ("import_fails.handler", {}, "SettingsError"),
    ],
)
def test_init_failure_is_reported_to_init_error_and_the_process_exits(
    handler: str, env: dict[str, str], error_type: str
) -> None:
    with RuntimeEmulator(handler, env=env) as emulator:
        posted: Posted = emulator.wait_for_init_error()
        exit_code = emulator.wait_exit()

    assert posted.path == "/2018-06-01/runtime/init/error"
    assert posted.header("Lambda-Runtime-Function-Error-Type") == error_type
    document = posted.json()
    assert document["errorType"] == error_type
    body = error_document(document["errorMessage"], error_type, document["stackTrace"])
    assert posted.head + bytes(posted.raw) == error_post(emulator, posted.path, error_type, body)
    if handler == "import_fails.handler":
        assert document["errorMessage"] == "LOG_LEVEL: 'LOUD' is not a log level"
        assert any("import_fails.py" in frame for frame in document["stackTrace"])
    assert exit_code == 1
    assert emulator.next_calls == 0


def test_function_url_event_through_the_real_lambda_entry(tmp_path: Path) -> None:
    close_log = tmp_path / "close.log"
    event = load_event("function_url_chat_stream")
    event["headers"]["x-close-log"] = str(close_log)
    deadline_ms = int(time.time() * 1000) + 60_000
    with RuntimeEmulator("door_echo.handler") as emulator:
        invocation = emulator.invoke(event, deadline_ms=deadline_ms)
        prelude, payload = invocation.prelude_and_payload()
        closes = settled_log(emulator, close_log)

    assert prelude == {
        "statusCode": 200,
        "headers": {"content-type": "text/event-stream"},
        "cookies": ["s=1; Secure"],
    }
    first, done = payload.split(b"\n\n", 1)
    assert done == b"data: [DONE]\n\n"
    seen = json.loads(first.removeprefix(b"data: "))
    assert seen["door"] == "function_url"
    assert seen["path"] == "/openai/v1/chat/completions"
    assert seen["query"] == "api-version=2&tag=a&tag=b%20c"
    assert seen["cookie"] == "session=abc123; theme=dark"
    assert seen["request_id"] == invocation.request_id
    assert abs(seen["deadline"] - deadline_ms / 1000) <= 1.0
    assert closes == ["on_close"]


def test_rest_event_through_the_real_lambda_entry() -> None:
    with RuntimeEmulator("door_echo.handler") as emulator:
        prelude, payload = emulator.invoke(load_event("rest_api_chat_stream")).prelude_and_payload()

    assert prelude == {
        "statusCode": 200,
        "headers": {"content-type": "text/event-stream"},
        "multiValueHeaders": {"set-cookie": ["s=1; Secure"]},
    }
    seen = json.loads(payload.split(b"\n\n", 1)[0].removeprefix(b"data: "))
    assert seen["door"] == "rest_api"
    assert seen["path"] == "/openai/v1/chat/completions"


@pytest.mark.skipif(not PYTHON_313.exists(), reason="no local Python 3.13 interpreter")
def test_runs_on_python_313_as_the_lambda_runtime_does() -> None:
    with RuntimeEmulator("sse_stream.handler", python=str(PYTHON_313)) as emulator:
        invocation = emulator.invoke({"count": 3})
        prelude, payload = invocation.prelude_and_payload()

    assert prelude["statusCode"] == 200
    assert payload.count(b"data: ") == 4
