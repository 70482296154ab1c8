"""The REST door never stays silent as long as API Gateway tolerates (docs/decisions/0001).

A regional REST API ends a streamed response that sends nothing for 5 minutes, and the gateway
sends nothing for a non-streamed request until the upstream's whole answer is in. So the REST
door bounds every wait for upstream bytes by `rest_api.MAX_SILENCE_SECONDS` (285 s): a silent
upstream becomes an OpenAI-shaped 504 before the first byte, or one SSE error event during a
stream, never a connection that API Gateway cuts. The Function URL door has no such limit.

Driven through `lambda_entry.handle_event` (the seam the streaming runtime calls) with REST and
Function URL events, against a gateway built by `wiring.build` over the session's simulator and
DynamoDB. The limit is lowered to half a second for the test, and the simulator is silent for
several times that, so the outcome does not depend on how fast this machine is.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mantle_gateway import simulator, wiring
from mantle_gateway.doors import lambda_entry, rest_api
from mantle_gateway.doors.lambda_entry import Gateway
from mantle_gateway.upstream.signing import static_credentials

MODEL = "openai.gpt-oss-120b"
EVENTS = Path(__file__).resolve().parents[1] / "support" / "events"
SILENCE_LIMIT = 0.5
"""The REST door's limit during these tests (285 s in production)."""
UPSTREAM_SILENCE = 2.0
"""How long the simulator stays silent: four times the limit."""


@dataclass
class Context:
    """Lambda's context as the doors read it: plenty of time left (5 min)."""

    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.fixture(scope="module")
def lambda_gateway(settings) -> Gateway:
    return wiring.build(
        settings,
        credentials=static_credentials(
            simulator.SIMULATOR_ACCESS_KEY, simulator.SIMULATOR_SECRET_KEY
        ),
    )


@pytest.fixture(autouse=True)
def _short_silence_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rest_api, "MAX_SILENCE_SECONDS", SILENCE_LIMIT)


def rest_event(key: str, body: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / "rest_api_chat_stream.json").read_text())
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    event.update(
        headers=headers,
        multiValueHeaders={name: [value] for name, value in headers.items()},
        queryStringParameters=None,
        multiValueQueryStringParameters=None,
        body=json.dumps(body),
    )
    return event


def function_url_event(key: str, body: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / "function_url_chat_stream.json").read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/openai/v1/chat/completions"
    event["headers"]["authorization"] = f"Bearer {key}"
    event["body"] = json.dumps(body)
    return event


def invoke(gateway: Gateway, event: dict[str, Any]) -> tuple[Any, bytes]:
    """Run the handler and read its body as the runtime does: every piece, then close once."""
    result = lambda_entry.handle_event(event, Context(), gateway)
    body = result["body"]
    try:
        content = b"".join(body)
    finally:
        body.close()
    return result, content


CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "think long"}], "max_tokens": 5}


def test_a_silent_upstream_is_a_504_on_the_rest_door_before_api_gateway_cuts_it(
    lambda_gateway, new_key, sim, usage_items
) -> None:
    # GIVEN an upstream that answers a non-streamed request only after the REST door's limit
    sim.inject(simulator.DelayHeaders(seconds=UPSTREAM_SILENCE))
    key, record = new_key()

    # WHEN the request comes through the REST API
    result, content = invoke(lambda_gateway, rest_event(key, CHAT))

    # THEN an OpenAI-shaped 504 that says why and what to do instead; nothing billed
    assert result["statusCode"] == 504
    error = json.loads(content)["error"]
    assert (error["type"], error["code"]) == ("upstream_error", "upstream_timeout")
    assert f"nothing for {SILENCE_LIMIT:g} s" in error["message"]
    assert "stream" in error["message"] and "Function URL" in error["message"]
    assert usage_items(record.key_id, timeout=0.3) == []


def test_the_function_url_door_waits_for_the_same_upstream(lambda_gateway, new_key, sim) -> None:
    sim.inject(simulator.DelayHeaders(seconds=UPSTREAM_SILENCE))
    key, _ = new_key()

    result, content = invoke(lambda_gateway, function_url_event(key, CHAT))

    assert result["statusCode"] == 200
    assert json.loads(content)["object"] == "chat.completion"


def test_a_stream_that_goes_silent_ends_with_one_error_event_on_the_rest_door(
    lambda_gateway, new_key, sim, usage_items
) -> None:
    # GIVEN a stream whose events come further apart than the REST door's limit
    sim.inject(simulator.SlowStream(event_delay=UPSTREAM_SILENCE))
    key, record = new_key()

    # WHEN it is streamed through the REST API
    result, content = invoke(lambda_gateway, rest_event(key, {**CHAT, "stream": True}))

    # THEN the stream (200) ends with one error event and [DONE], not with a cut connection
    assert result["statusCode"] == 200
    blocks = [b for b in content.split(b"\n\n") if b.strip()]
    assert blocks[-1] == b"data: [DONE]"
    error = json.loads(blocks[-2].removeprefix(b"data: "))["error"]
    assert error["code"] == "upstream_idle_timeout"
    (item,) = usage_items(record.key_id)
    assert item["door"] == "rest_api"
    assert item["outcome"] == "upstream_idle_timeout"
