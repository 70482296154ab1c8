"""The whole path through real servers, driven by the official openai SDK as users drive it.

GIVEN the local door, DynamoDB (moto server) and the Mantle simulator,
WHEN a client calls chat completions and responses, streamed and not, sync and async,
THEN answers arrive intact, the simulator saw a valid SigV4 signature and never the gateway key,
and one usage item per request holds the right numbers with sparse attributes only where due.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest

from mantle_gateway import simulator

MODEL = "openai.gpt-oss-120b"
MESSAGES: Any = [{"role": "user", "content": "say something nice"}]


def assert_clean_upstream(sim: simulator.Simulator, secret: str) -> None:
    assert sim.requests, "the simulator saw no request"
    for seen in sim.requests:
        assert seen.signature_ok, seen.signature_error
        for value in seen.headers.values():
            assert secret not in value
        assert secret.encode() not in seen.body


def test_chat_completion(sim, new_key, client, usage_items) -> None:
    secret, record = new_key()
    answer = client(secret).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)
    assert answer.choices[0].message.content
    assert answer.usage is not None and answer.usage.completion_tokens == 5
    assert_clean_upstream(sim, secret)
    assert sim.requests[0].path == "/v1/chat/completions"
    (item,) = usage_items(record.key_id)
    assert item["model"] == MODEL
    assert item["input_tokens"] == answer.usage.prompt_tokens
    assert item["output_tokens"] == 5
    assert item["total_tokens"] == answer.usage.prompt_tokens + 5
    assert item["cached_tokens"] == 0
    assert item["api_surface"] == "chat_completions"
    assert "reasoning_tokens" not in item
    assert item["stream"] is False and item["door"] == "local" and item["status"] == "ok"
    assert item["cost_usd"] > 0


def test_chat_stream_without_include_usage_is_metered_invisibly(
    sim, new_key, client, usage_items
) -> None:
    secret, record = new_key()
    stream = client(secret).chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=6, stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert all(c.usage is None for c in chunks), "the client must not see the injected usage"
    assert all(c.choices for c in chunks)
    assert sim.requests[0].json()["stream_options"] == {"include_usage": True}
    (item,) = usage_items(record.key_id)
    assert item["output_tokens"] == 6 and item["stream"] is True
    assert "estimated" not in item


def test_chat_stream_with_include_usage_reaches_client(new_key, client, usage_items) -> None:
    secret, record = new_key()
    chunks = list(
        client(secret).chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            max_tokens=3,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens == 3
    (item,) = usage_items(record.key_id)
    assert item["output_tokens"] == 3


def test_async_client_streams(gateway, new_key, usage_items) -> None:
    secret, record = new_key()

    async def go() -> str:
        async with openai.AsyncOpenAI(
            base_url=gateway.url + "/v1", api_key=secret, max_retries=0
        ) as aclient:
            stream = await aclient.chat.completions.create(
                model=MODEL, messages=MESSAGES, max_tokens=4, stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(go())
    assert usage_items(record.key_id)[0]["output_tokens"] == 4


def test_responses_create_with_reasoning_tokens(sim, new_key, client, usage_items) -> None:
    sim.reasoning_tokens = 3
    secret, record = new_key()
    response = client(secret).responses.create(
        model=MODEL, input="hello there", max_output_tokens=7
    )
    assert response.output_text
    assert response.usage is not None
    (item,) = usage_items(record.key_id)
    assert item["api_surface"] == "responses"
    assert item["reasoning_tokens"] == 3
    assert item["output_tokens"] == response.usage.output_tokens
    assert item["response_id"] == response.id


def test_responses_stream_gets_event_lines(gateway, new_key, usage_items) -> None:
    secret, record = new_key()
    with httpx.stream(
        "POST",
        gateway.url + "/openai/v1/responses",
        headers={"authorization": f"Bearer {secret}"},
        json={"model": MODEL, "input": "hi", "stream": True, "max_output_tokens": 3},
    ) as answer:
        raw = b"".join(answer.iter_raw())
    events = [block for block in raw.split(b"\n\n") if block]
    assert all(block.startswith(b"event: response.") for block in events)
    assert events[-1].startswith(b"event: response.completed\n")
    (item,) = usage_items(record.key_id)
    assert item["output_tokens"] == 3 and item["stream"] is True


def test_responses_stream_through_sdk(new_key, client, usage_items) -> None:
    secret, record = new_key()
    events = list(client(secret).responses.create(model=MODEL, input="hi", stream=True))
    completed = [e for e in events if e.type == "response.completed"]
    assert completed and completed[0].response.usage is not None
    assert usage_items(record.key_id)[0]["input_tokens"] == completed[0].response.usage.input_tokens


def test_stored_response_crud_belongs_to_its_key(sim, new_key, client, usage_items) -> None:
    secret, record = new_key()
    other, _ = new_key()
    owner_client, stranger = client(secret), client(other)
    created = owner_client.responses.create(model=MODEL, input="remember me")
    assert owner_client.responses.retrieve(created.id).id == created.id
    items = owner_client.responses.input_items.list(created.id, limit=5)
    assert items.data
    assert "limit=5" in sim.requests[-1].query
    for call in (
        lambda c: c.responses.retrieve(created.id),
        lambda c: c.responses.input_items.list(created.id),
        lambda c: c.responses.cancel(created.id),
        lambda c: c.responses.delete(created.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call(stranger)
    owner_client.responses.cancel(created.id)
    owner_client.responses.delete(created.id)
    assert len(usage_items(record.key_id, count=2, timeout=0.3)) == 1, "CRUD is not billed"


def test_models_list_not_billed(new_key, client, usage_items) -> None:
    secret, record = new_key()
    models = client(secret).models.list()
    assert MODEL in {m.id for m in models.data}
    assert usage_items(record.key_id, timeout=0.2) == []


def test_guardrail_and_project_headers_forwarded_client_credentials_not(
    sim, new_key, client
) -> None:
    secret, _ = new_key()
    client(secret).chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        extra_headers={
            "X-Amzn-Bedrock-GuardrailIdentifier": "gr123",
            "X-Amzn-Bedrock-GuardrailVersion": "1",
            "OpenAI-Project": "proj_9",
            "Cookie": "session=abc",
            "X-Forwarded-For": "10.0.0.1",
        },
    )
    # The gateway enforces the guardrail itself (docs/decisions/0011) and still forwards them.
    checks, (seen,) = (
        [r.path for r in sim.requests if r.path.startswith("/guardrail/")],
        [r for r in sim.requests if not r.path.startswith("/guardrail/")],
    )
    assert checks == ["/guardrail/gr123/version/1/apply"] * 2  # the input, then the answer
    assert seen.headers["x-amzn-bedrock-guardrailidentifier"] == "gr123"
    assert seen.headers["x-amzn-bedrock-guardrailversion"] == "1"
    assert seen.headers["openai-project"] == "proj_9"
    for header in ("cookie", "x-forwarded-for", "x-api-key"):
        assert header not in seen.headers
    assert seen.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
    signed = seen.headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert "x-amzn-bedrock-guardrailidentifier" in signed
    assert "connection" not in signed and "user-agent" not in signed
    assert_clean_upstream(sim, secret)


def test_wrong_prefix_is_retried_once_and_remembered(sim, new_key, client) -> None:
    sim.model_prefixes["acme.newmodel"] = "/openai/v1"
    sim.models.append("acme.newmodel")
    secret, _ = new_key()
    for _ in range(2):
        client(secret).chat.completions.create(model="acme.newmodel", messages=MESSAGES)
    assert [r.path for r in sim.requests] == [
        "/v1/chat/completions",
        "/openai/v1/chat/completions",
        "/openai/v1/chat/completions",
    ]


def test_first_event_arrives_before_upstream_finishes(sim, gateway, new_key) -> None:
    """The upstream waits 3 s between events; a buffering gateway would time out the read."""
    sim.event_delay = 3.0
    secret, _ = new_key()
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers={"x-api-key": secret},
        json={"model": MODEL, "messages": MESSAGES, "stream": True, "max_tokens": 2},
        timeout=httpx.Timeout(2.0),
    ) as answer:
        first = next(answer.iter_raw())
    assert first.startswith(b"data: {")


def test_query_string_forwarded_and_signed_whatever_its_encoding(sim, gateway, new_key) -> None:
    secret, _ = new_key()
    created = httpx.post(
        gateway.url + "/v1/responses",
        headers={"x-api-key": secret},
        json={"model": MODEL, "input": "a b c"},
    ).json()
    answer = httpx.get(
        gateway.url + f"/v1/responses/{created['id']}/input_items?limit=2&order=asc&tag=a+b%2Bc",
        headers={"x-api-key": secret},
    )
    assert answer.status_code == 200, answer.text
    seen = sim.requests[-1]
    assert seen.signature_ok
    assert seen.query == "limit=2&order=asc&tag=a%20b%2Bc"


def test_only_the_owner_can_chain_on_a_stored_response(sim, new_key, client) -> None:
    secret, _ = new_key()
    other, _ = new_key()
    first = client(secret).responses.create(model=MODEL, input="remember the number 7")
    chained = client(secret).responses.create(
        model=MODEL, input="which number?", previous_response_id=first.id
    )
    assert chained.output_text
    before = sim.request_count
    with pytest.raises(openai.BadRequestError) as info:
        client(other).responses.create(
            model=MODEL, input="which number?", previous_response_id=first.id
        )
    assert info.value.code == "previous_response_not_found"
    assert sim.request_count == before, "a stranger's chain never reaches Mantle"
