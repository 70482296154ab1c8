"""Faults: each injected misbehaviour reaches the next matching request, once, in FIFO order."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from mantle_gateway.simulator import (
    BadUsage,
    DelayHeaders,
    DropMidStream,
    ErrorAnswer,
    ResetConnection,
    Simulator,
    SlowStream,
    WrongRoute,
)

MODEL = "openai.gpt-oss-120b"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
STREAM = {**CHAT, "stream": True, "max_tokens": 5}


def test_error_answer_is_sent_verbatim(sim: Simulator, client: httpx.Client) -> None:
    sim.inject(
        ErrorAnswer(
            status=429,
            body={"error": {"code": "throttled", "message": "slow down", "param": None}},
            headers={"retry-after": "7", "x-custom": "yes"},
        )
    )
    refused = client.post("/v1/chat/completions", json=CHAT)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "7"
    assert refused.headers["x-custom"] == "yes"
    assert refused.json() == {"error": {"code": "throttled", "message": "slow down", "param": None}}
    assert "x-request-id" in refused.headers
    assert isinstance(sim.requests[-1].fault, ErrorAnswer)
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "validation_error"), (429, "rate_limit_exceeded"), (500, "internal_error")],
)
def test_error_answer_default_bodies_are_openai_shaped(
    sim: Simulator, client: httpx.Client, status: int, code: str
) -> None:
    sim.inject(ErrorAnswer(status=status))
    response = client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_error_answer_raw_bytes(sim: Simulator, client: httpx.Client) -> None:
    sim.inject(
        ErrorAnswer(status=503, body=b"upstream busy", headers={"content-type": "text/plain"})
    )
    response = client.get("/v1/models")
    assert response.status_code == 503
    assert response.content == b"upstream busy"
    assert response.headers.get_list("content-type") == ["text/plain"]


def test_error_answer_headers_replace_the_defaults(sim: Simulator, client: httpx.Client) -> None:
    sim.inject(ErrorAnswer(status=500, headers={"X-Request-Id": "req-up-1"}))
    response = client.get("/v1/models")
    assert response.headers.get_list("x-request-id") == ["req-up-1"]
    assert response.headers["x-amzn-requestid"] == sim.requests[-1].request_id


def test_wrong_route_fault_refuses_once(sim: Simulator, client: httpx.Client) -> None:
    sim.inject(WrongRoute())
    first = client.post("/v1/chat/completions", json=CHAT)
    assert first.status_code == 400
    assert first.json()["error"]["message"] == f"model `{MODEL}` isn't supported on this route"
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_faults_are_fifo_and_filtered(sim: Simulator, client: httpx.Client) -> None:
    sim.inject(ErrorAnswer(status=500, model="openai.gpt-5.5"))
    sim.inject(ErrorAnswer(status=502, path="/responses"))
    sim.inject(ErrorAnswer(status=503, path="/v1/chat/completions"))
    sim.inject(ErrorAnswer(status=504))
    assert client.get("/v1/models").status_code == 504
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 503
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
    assert client.post("/v1/responses", json={"model": MODEL}).status_code == 502
    gpt55 = {"model": "openai.gpt-5.5", "input": "x"}
    assert client.post("/openai/v1/responses", json=gpt55).status_code == 500
    assert sim.pending_faults == []


def test_refused_or_unknown_requests_do_not_consume_faults(
    sim: Simulator, client: httpx.Client
) -> None:
    sim.inject(ErrorAnswer(status=500))
    assert httpx.get(sim.url + "/v1/models").status_code == 401
    assert client.get("/v1/nothing").status_code == 404
    assert len(sim.pending_faults) == 1


def test_reset_connection_before_any_answer(sim: Simulator, client: httpx.Client) -> None:
    sim.inject(ResetConnection())
    with pytest.raises(httpx.TransportError):
        client.post("/v1/chat/completions", json=CHAT)
    assert isinstance(sim.requests[-1].fault, ResetConnection)
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_delay_before_headers(sim: Simulator, client: httpx.Client) -> None:
    sim.inject(DelayHeaders(seconds=0.5))
    with pytest.raises(httpx.ReadTimeout):
        client.post("/v1/chat/completions", json=CHAT, timeout=httpx.Timeout(5.0, read=0.1))
    sim.inject(DelayHeaders(seconds=0.05))
    started = time.monotonic()
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
    assert time.monotonic() - started >= 0.05


def test_drop_mid_stream_after_k_events(sim: Simulator, client: httpx.Client) -> None:
    sim.inject(DropMidStream(after_events=3))
    received: list[str] = []
    with client.stream("POST", "/v1/chat/completions", json=STREAM) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        received.extend(next(lines) for _ in range(6))  # 3 events, each "data: …" + ""
        with pytest.raises(httpx.RemoteProtocolError):
            next(lines)
    assert len([line for line in received if line]) == 3
    assert "[DONE]" not in "".join(received)
    assert client.post("/v1/chat/completions", json=STREAM).status_code == 200


def test_drop_after_every_event_still_omits_the_last_chunk(
    sim: Simulator, client: httpx.Client
) -> None:
    sim.inject(DropMidStream(after_events=100))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/v1/chat/completions", json=STREAM)


def test_drop_on_a_non_streaming_request_closes_without_answer(
    sim: Simulator, client: httpx.Client
) -> None:
    sim.inject(DropMidStream(after_events=1))
    with pytest.raises(httpx.TransportError):
        client.post("/v1/chat/completions", json=CHAT)


def test_first_byte_arrives_long_before_the_last(sim: Simulator, client: httpx.Client) -> None:
    sim.event_delay = 0.05
    arrivals: list[float] = []
    started = time.monotonic()
    with client.stream("POST", "/v1/chat/completions", json=STREAM) as response:
        for line in response.iter_lines():
            if line:
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 5 + 3
    assert arrivals[-1] - arrivals[0] >= 0.05 * 6


def test_slow_stream_fault_applies_once(sim: Simulator, client: httpx.Client) -> None:
    sim.inject(SlowStream(event_delay=0.03))
    started = time.monotonic()
    client.post("/v1/chat/completions", json=STREAM)
    assert time.monotonic() - started >= 0.03 * 7
    assert sim.pending_faults == []


def test_stop_interrupts_a_delay() -> None:
    sim = Simulator().start()
    sim.inject(DelayHeaders(seconds=30))
    outcome: list[httpx.HTTPError] = []

    def call() -> None:
        try:
            httpx.get(sim.url + "/v1/models", headers={"authorization": "Bearer x"})
        except httpx.HTTPError as error:
            outcome.append(error)

    sim.bearer_token = "x"
    caller = threading.Thread(target=call)
    caller.start()
    while not sim.requests:
        time.sleep(0.01)
    started = time.monotonic()
    sim.stop()
    caller.join(timeout=5)
    assert time.monotonic() - started < 2
    assert outcome and isinstance(outcome[0], httpx.TransportError)


def test_reset_clears_requests_faults_and_stored_responses(
    sim: Simulator, client: httpx.Client
) -> None:
    created = client.post("/v1/responses", json={"model": MODEL}).json()
    sim.inject(ErrorAnswer(status=500))
    sim.reset()
    assert sim.requests == []
    assert sim.pending_faults == []
    assert sim.stored_response(created["id"]) is None


@pytest.mark.parametrize("value", ["NaN", "-Infinity", "1e45", "-3", "2.5", '"7"'])
def test_bad_usage_writes_the_raw_value_wherever_usage_is_reported(
    sim: Simulator, client: httpx.Client, value: str
) -> None:
    # a whole chat answer
    sim.inject(BadUsage(value=value))
    whole = client.post("/v1/chat/completions", json=CHAT)
    assert f'"prompt_tokens":{value}'.encode() in whole.content
    assert b'"completion_tokens":8' in whole.content, "other counts are left as they were"
    # the usage chunk of a chat stream
    sim.inject(BadUsage(value=value, fields=("completion_tokens",)))
    streamed = client.post(
        "/v1/chat/completions", json={**STREAM, "stream_options": {"include_usage": True}}
    )
    assert f'"completion_tokens":{value}'.encode() in streamed.content
    # the terminal event of a Responses stream, and a stored response read back
    sim.inject(BadUsage(value=value, fields=("output_tokens",)))
    response = client.post("/v1/responses", json={"model": MODEL, "stream": True})
    assert f'"output_tokens":{value}'.encode() in response.content.split(b"\n\n")[-2]
    stored = client.post("/v1/responses", json={"model": MODEL}).json()["id"]
    sim.inject(BadUsage(value=value, path=f"/v1/responses/{stored}"))
    assert f'"input_tokens":{value}'.encode() in client.get(f"/v1/responses/{stored}").content
    assert b"NaN" not in client.get(f"/v1/responses/{stored}").content, "once only"
