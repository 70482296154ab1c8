"""Responses API: objects, streams (data-only by default), stored-response operations."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from mantle_gateway.simulator import Simulator

MODEL = "openai.gpt-5.5"
BASE = "/openai/v1"

EVENT_TYPES = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def _create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = client.post(BASE + "/responses", json={"model": MODEL, **fields})
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def test_response_object(sim: Simulator, client: httpx.Client) -> None:
    sim.reasoning_tokens, sim.cached_tokens = 4, 1
    body = _create(client, input="one two three", instructions="be kind", max_output_tokens=2)
    assert body["id"].startswith("resp_")
    assert body["object"] == "response"
    assert body["status"] == "completed"
    assert body["model"] == MODEL
    assert isinstance(body["created_at"], int)
    [item] = body["output"]
    assert item["type"] == "message"
    assert item["role"] == "assistant"
    assert item["id"].startswith("msg_")
    assert item["content"][0]["type"] == "output_text"
    assert item["content"][0]["text"] == "tok0 tok1 "
    assert body["usage"] == {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 1},
        "output_tokens": 6,
        "output_tokens_details": {"reasoning_tokens": 4},
        "total_tokens": 11,
    }


def test_stored_response_can_be_read_cancelled_and_deleted(client: httpx.Client) -> None:
    created = _create(client, input="hi")
    path = f"{BASE}/responses/{created['id']}"
    assert client.get(path).json() == created
    cancelled = client.post(path + "/cancel").json()
    assert cancelled["id"] == created["id"]
    assert cancelled["status"] == "cancelled"
    assert client.get(path).json()["status"] == "cancelled"
    deleted = client.delete(path)
    assert deleted.json() == {"id": created["id"], "object": "response", "deleted": True}
    for response in (client.get(path), client.delete(path), client.post(path + "/cancel")):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_stored_responses_are_readable_on_either_prefix(client: httpx.Client) -> None:
    created = _create(client, input="hi")
    assert client.get(f"/v1/responses/{created['id']}").status_code == 200


def test_store_false_keeps_nothing(sim: Simulator, client: httpx.Client) -> None:
    created = _create(client, input="hi", store=False)
    assert created["store"] is False
    assert sim.stored_response(created["id"]) is None
    assert client.get(f"{BASE}/responses/{created['id']}").status_code == 404


def test_stored_responses_are_bounded_and_the_oldest_dropped(
    sim: Simulator, client: httpx.Client
) -> None:
    # GIVEN a store bounded to 3 responses
    sim.response_store.max_items = 3

    # WHEN 5 responses are stored
    ids = [_create(client, input=f"turn {n}")["id"] for n in range(5)]

    # THEN the 3 newest are readable and the 2 oldest are gone, as expired ones would be
    assert sim.response_store.ids() == ids[2:]
    for response_id in ids[2:]:
        assert client.get(f"{BASE}/responses/{response_id}").status_code == 200
    for response_id in ids[:2]:
        assert client.get(f"{BASE}/responses/{response_id}").status_code == 404


def test_stored_responses_are_bounded_in_bytes(sim: Simulator, client: httpx.Client) -> None:
    # GIVEN a store bounded to about two of these responses' JSON
    first = _create(client, input="a " * 2000)["id"]
    one = sim.response_store.size_bytes
    sim.response_store.max_bytes = 2 * one + one // 2

    # WHEN two more of the same size are stored
    later = [_create(client, input="a " * 2000)["id"] for _ in range(2)]

    # THEN the first is dropped to stay under the bound
    assert sim.response_store.ids() == later
    assert sim.response_store.size_bytes <= sim.response_store.max_bytes
    assert client.get(f"{BASE}/responses/{first}").status_code == 404


def test_input_items_list(client: httpx.Client) -> None:
    created = _create(
        client,
        input=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "second"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "3"}]},
        ],
    )
    path = f"{BASE}/responses/{created['id']}/input_items"
    listing = client.get(path).json()
    assert listing["object"] == "list"
    assert listing["has_more"] is False
    texts = [item["content"][0]["text"] for item in listing["data"]]
    assert texts == ["3", "second", "first"]  # newest first by default, as OpenAI
    assert listing["first_id"] == listing["data"][0]["id"]
    assert listing["last_id"] == listing["data"][-1]["id"]
    assert listing["data"][-1]["content"][0]["type"] == "input_text"
    assert listing["data"][1]["content"][0]["type"] == "output_text"
    page = client.get(path, params={"order": "asc", "limit": 1}).json()
    assert [item["content"][0]["text"] for item in page["data"]] == ["first"]
    assert page["has_more"] is True
    rest = client.get(path, params={"order": "asc", "after": page["last_id"]}).json()
    assert [item["content"][0]["text"] for item in rest["data"]] == ["second", "3"]
    assert client.get(path, params={"order": "up"}).status_code == 400


def test_string_input_becomes_one_user_message(client: httpx.Client) -> None:
    created = _create(client, input="just text")
    listing = client.get(f"{BASE}/responses/{created['id']}/input_items").json()
    [item] = listing["data"]
    assert item["role"] == "user"
    assert item["content"] == [{"type": "input_text", "text": "just text"}]


def test_chained_request_may_omit_the_model(client: httpx.Client) -> None:
    first = _create(client, input="hi")
    response = client.post(
        BASE + "/responses", json={"previous_response_id": first["id"], "input": "more"}
    )
    assert response.status_code == 200
    assert response.json()["model"] == MODEL
    assert response.json()["previous_response_id"] == first["id"]
    missing = client.post(BASE + "/responses", json={"previous_response_id": "resp_x"})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "previous_response_not_found"


def _frames(text: str) -> list[list[str]]:
    frames = text.split("\n\n")
    assert frames[-1] == ""
    return [frame.split("\n") for frame in frames[:-1]]


def test_stream_is_data_only_and_ends_with_completed(client: httpx.Client) -> None:
    response = client.post(
        BASE + "/responses",
        json={"model": MODEL, "input": "a b", "stream": True, "max_output_tokens": 3},
    )
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["transfer-encoding"] == "chunked"
    frames = _frames(response.text)
    assert all(len(lines) == 1 and lines[0].startswith("data: {") for lines in frames)
    events = [json.loads(lines[0][6:]) for lines in frames]
    assert [event["type"] for event in events] == EVENT_TYPES
    assert [event["sequence_number"] for event in events] == list(range(len(EVENT_TYPES)))
    deltas = [event["delta"] for event in events if event["type"].endswith(".delta")]
    assert deltas == ["tok0 ", "tok1 ", "tok2 "]
    assert events[0]["response"]["status"] == "in_progress"
    assert events[0]["response"]["usage"] is None
    completed = events[-1]["response"]
    assert completed["status"] == "completed"
    assert completed["usage"]["input_tokens"] == 2
    assert completed["usage"]["output_tokens"] == 3
    assert completed["output"][0]["content"][0]["text"] == "tok0 tok1 tok2 "
    assert events[-2]["item"] == completed["output"][0]


def test_stream_can_carry_event_lines(sim: Simulator, client: httpx.Client) -> None:
    sim.responses_event_lines = True
    response = client.post(
        BASE + "/responses",
        json={"model": MODEL, "input": "a", "stream": True, "max_output_tokens": 3},
    )
    frames = _frames(response.text)
    assert [lines[0] for lines in frames] == [f"event: {kind}" for kind in EVENT_TYPES]
    for lines in frames:
        assert json.loads(lines[1][6:])["type"] == lines[0][7:]


def test_streamed_response_is_stored(sim: Simulator, client: httpx.Client) -> None:
    response = client.post(BASE + "/responses", json={"model": MODEL, "stream": True})
    last = json.loads(_frames(response.text)[-1][0][6:])
    stored = sim.stored_response(last["response"]["id"])
    assert stored is not None
    assert stored["usage"] == last["response"]["usage"]


@pytest.mark.parametrize("event_lines", [False, True])
def test_openai_sdk_parses_the_stream(event_lines: bool) -> None:
    with Simulator(bearer_token="sim-token") as sim:
        sim.responses_event_lines = event_lines
        sim.reasoning_tokens = 3
        sdk = openai.OpenAI(base_url=sim.url + BASE, api_key="sim-token", max_retries=0)
        events = list(sdk.responses.create(model=MODEL, input="hello", stream=True))
        retrieved = sdk.responses.retrieve(events[-1].response.id)  # type: ignore[union-attr]
    assert [event.type for event in events][-1] == "response.completed"
    completed = events[-1]
    assert completed.type == "response.completed"
    usage = completed.response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (1, 11, 12)
    assert usage.output_tokens_details.reasoning_tokens == 3
    assert completed.response.output_text == "".join(f"tok{i} " for i in range(8))
    assert retrieved.id == completed.response.id


def test_openai_sdk_non_streaming_and_delete() -> None:
    with Simulator(bearer_token="sim-token") as sim:
        sdk = openai.OpenAI(base_url=sim.url + "/v1", api_key="sim-token", max_retries=0)
        answer = sdk.responses.create(model="openai.gpt-oss-20b", input="hi", max_output_tokens=2)
        assert answer.output_text == "tok0 tok1 "
        items = sdk.responses.input_items.list(answer.id)
        assert [item.type for item in items.data] == ["message"]
        sdk.responses.delete(answer.id)
        with pytest.raises(openai.NotFoundError):
            sdk.responses.retrieve(answer.id)


@pytest.mark.parametrize("event_lines", [False, True])
def test_a_stored_response_is_replayed_as_events_with_stream_true(event_lines: bool) -> None:
    # GIVEN a background response (stored, answered queued)
    with Simulator(bearer_token="sim-token") as sim:
        sim.responses_event_lines = event_lines
        sdk = openai.OpenAI(base_url=sim.url + BASE, api_key="sim-token", max_retries=0)
        queued = sdk.responses.create(
            model=MODEL, input="later", background=True, max_output_tokens=3
        )
        # WHEN it is read back streamed, whole and after sequence number 4
        events = list(sdk.responses.retrieve(queued.id, stream=True))
        tail = list(sdk.responses.retrieve(queued.id, stream=True, starting_after=4))
        seen = sim.requests[-1]
    # THEN its events come as SSE, numbered from 0, ending with the finished response
    assert queued.status == "queued"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[0].type == "response.created"
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.id == queued.id
    assert completed.response.output_text == "tok0 tok1 tok2 "
    assert completed.response.usage is not None and completed.response.usage.output_tokens == 3
    assert [event.sequence_number for event in tail] == list(range(5, len(events)))
    assert (seen.method, seen.query) == ("GET", "starting_after=4&stream=true")
