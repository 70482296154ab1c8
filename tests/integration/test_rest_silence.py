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

import pytest

from mantle_gateway import simulator
from mantle_gateway.doors import rest_api
from tests.support.lambda_door import LambdaContext, function_url_event, invoke, rest_event

MODEL = "openai.gpt-oss-120b"
SILENCE_LIMIT = 0.5
"""The REST door's limit during these tests (285 s in production)."""
UPSTREAM_SILENCE = 2.0
"""How long the simulator stays silent: four times the limit."""
CHAT_PATH = "/openai/v1/chat/completions"


@pytest.fixture(autouse=True)
def _short_silence_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rest_api, "MAX_SILENCE_SECONDS", SILENCE_LIMIT)


CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "think long"}], "max_tokens": 5}


def test_a_silent_upstream_is_a_504_on_the_rest_door_before_api_gateway_cuts_it(
    lambda_gateway, new_key, sim, usage_items
) -> None:
    # GIVEN an upstream that answers a non-streamed request only after the REST door's limit
    sim.inject(simulator.DelayHeaders(seconds=UPSTREAM_SILENCE))
    key, record = new_key()

    # WHEN the request comes through the REST API
    result, content = invoke(lambda_gateway, rest_event(key, CHAT), LambdaContext())

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

    result, content = invoke(
        lambda_gateway, function_url_event(CHAT_PATH, key, CHAT), LambdaContext()
    )

    assert result["statusCode"] == 200
    assert json.loads(content)["object"] == "chat.completion"


def test_a_stream_that_goes_silent_ends_with_one_error_event_on_the_rest_door(
    lambda_gateway, new_key, sim, usage_items
) -> None:
    # GIVEN a stream whose events come further apart than the REST door's limit
    sim.inject(simulator.SlowStream(event_delay=UPSTREAM_SILENCE))
    key, record = new_key()

    # WHEN it is streamed through the REST API
    result, content = invoke(
        lambda_gateway, rest_event(key, {**CHAT, "stream": True}), LambdaContext()
    )

    # THEN the stream (200) ends with one error event and [DONE], not with a cut connection
    assert result["statusCode"] == 200
    blocks = [b for b in content.split(b"\n\n") if b.strip()]
    assert blocks[-1] == b"data: [DONE]"
    error = json.loads(blocks[-2].removeprefix(b"data: "))["error"]
    assert error["code"] == "upstream_idle_timeout"
    (item,) = usage_items(record.key_id)
    assert item["door"] == "rest_api"
    assert item["outcome"] == "upstream_idle_timeout"
