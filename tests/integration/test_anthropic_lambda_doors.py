"""Both Lambda doors serve `/anthropic/...`: a Claude Code-shaped event (`?beta=true`,
`x-api-key`, betas, streamed) goes through the real Lambda entry and the real core to the
simulator, streams back, and is billed to the door it came through."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mantle_gateway import simulator, wiring
from mantle_gateway.doors import lambda_entry
from mantle_gateway.upstream.signing import static_credentials

EVENTS = Path(__file__).resolve().parents[1] / "support" / "events"


class Context:
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture(scope="module")
def core(settings):  # type: ignore[no-untyped-def]
    credentials = static_credentials(simulator.SIMULATOR_ACCESS_KEY, simulator.SIMULATOR_SECRET_KEY)
    return wiring.build(settings, credentials=credentials)


@pytest.mark.parametrize(
    ("name", "door"),
    [("function_url_messages_stream", "function_url"), ("rest_api_messages_stream", "rest_api")],
)
def test_claude_code_event_streams_through_the_lambda_entry(
    name, door, core, new_key, sim, usage_items
) -> None:
    secret, record = new_key()
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    event["headers"]["x-api-key"] = secret
    if "multiValueHeaders" in event:
        event["multiValueHeaders"]["x-api-key"] = [secret]
    result = lambda_entry.handle_event(event, Context(), core)
    body = result["body"]
    assert isinstance(body, lambda_entry.ResponseBody)
    streamed = b"".join(body)
    body.close()
    assert result["statusCode"] == 200
    headers = result["headers"]
    assert isinstance(headers, dict) and headers["content-type"] == "text/event-stream"
    assert streamed.startswith(b"event: message_start\n")
    assert streamed.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    (seen,) = sim.requests
    assert seen.path == "/anthropic/v1/messages" and seen.query == "beta=true"
    assert seen.signature_ok and seen.headers["anthropic-beta"].startswith("claude-code-20250219")
    (item,) = usage_items(record.key_id)
    assert item["door"] == door and item["api_surface"] == "messages" and item["stream"] is True
