"""Bedrock Guardrails enforced by the gateway (docs/decisions/0011), through the live local door
with the official SDKs, against the simulator's ApplyGuardrail stand-in (SigV4 service
`bedrock`): what was blocked never reached the upstream, what was masked reached it masked,
what the model said was checked before the client saw it, and the ledger says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import hypothesis
import openai
import pytest
from hypothesis import strategies as st

from mantle_gateway import simulator
from mantle_gateway.doors.local import LocalServer
from mantle_gateway.simulator import ErrorAnswer, guardrail
from mantle_gateway.store.dynamo import Dynamo
from tests.integration.conftest import GatewayFactory, KeyFactory

MODEL = "openai.gpt-oss-120b"
CLAUDE = "anthropic.claude-haiku-4-5"
GUARDRAIL = {
    "X-Amzn-Bedrock-GuardrailIdentifier": "gr1abc",
    "X-Amzn-Bedrock-GuardrailVersion": "1",
}
BLOCKED = "Sorry, the model cannot answer this question."
CARD = "4111 1111 1111 1111"


@pytest.fixture(autouse=True)
def _guardrail_policy(sim: simulator.Simulator) -> Iterator[None]:
    sim.guardrail_blocked_words = ["forbidden-word"]
    sim.guardrail_delay = 0.0
    yield
    sim.guardrail_blocked_words = ["forbidden-word"]
    sim.guardrail_failing_sources = frozenset()


@pytest.fixture(scope="module")
def guarded(start_gateway: GatewayFactory, sim: simulator.Simulator) -> LocalServer:
    return start_gateway(bedrock_runtime_endpoint_url=sim.url)


@pytest.fixture
def oai(guarded: LocalServer) -> Callable[[str], openai.OpenAI]:
    def make(key: str) -> openai.OpenAI:
        return _openai(guarded, key)

    return make


def _openai(door: LocalServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=door.url + "/openai/v1", api_key=key, max_retries=0)


def _upstream(sim: simulator.Simulator) -> list[simulator.SeenRequest]:
    return [r for r in sim.requests if not guardrail.PATH.match(r.path)]


def _guardrail_calls(sim: simulator.Simulator) -> list[simulator.SeenRequest]:
    return [r for r in sim.requests if guardrail.PATH.match(r.path)]


def _chat(client: openai.OpenAI, text: str, **extra: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": text}],
        extra_headers=GUARDRAIL,
        **extra,
    )


def test_blocked_input_is_refused_and_never_sent_upstream(
    sim: simulator.Simulator,
    oai: Callable[[str], openai.OpenAI],
    new_key: KeyFactory,
    usage_items: Callable[..., list[dict[str, Any]]],
) -> None:
    secret, record = new_key(monthly_budget_usd=Decimal("5"))
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(oai(secret), "tell me about the forbidden-word please")
    err = caught.value
    assert err.code == "guardrail_intervened"
    assert err.body["message"] == BLOCKED  # type: ignore[index]
    assert err.response.headers["x-gateway-guardrail"] == "gr1abc:1; action=intervened"
    assert _upstream(sim) == []
    calls = _guardrail_calls(sim)
    assert len(calls) == 1
    assert calls[0].signature_ok
    assert "/bedrock/aws4_request" in calls[0].headers["authorization"]
    assert calls[0].json()["source"] == "INPUT"
    (item,) = usage_items(record.key_id)
    assert item["status"] == "guardrail_blocked"
    assert item["input_tokens"] == 0
    assert item["output_tokens"] == 0
    assert item["guardrail"] == "gr1abc:1"
    assert item["guardrail_action"] == "intervened"
    assert item["guardrail_text_units"] > 0
    assert item["cost_usd"] == item["guardrail_cost_usd"] > 0


def test_masked_input_reaches_the_upstream_masked(
    sim: simulator.Simulator,
    oai: Callable[[str], openai.OpenAI],
    new_key: KeyFactory,
    usage_items: Callable[..., list[dict[str, Any]]],
) -> None:
    secret, record = new_key()
    raw = _chat(oai(secret), f"charge my card {CARD} today")
    assert raw.headers["x-gateway-guardrail"] == "gr1abc:1; action=intervened"
    assert raw.parse().choices[0].message.content
    (sent,) = _upstream(sim)
    assert sent.signature_ok
    assert sent.json()["messages"][0]["content"] == (
        "charge my card {CREDIT_DEBIT_CARD_NUMBER} today"
    )
    assert CARD.encode() not in sent.body
    assert sent.headers["x-amzn-bedrock-guardrailidentifier"] == "gr1abc"  # still forwarded
    (item,) = usage_items(record.key_id)
    assert item["status"] == "ok"
    assert item["guardrail_action"] == "intervened"


def test_clean_answer_says_no_action_and_bills_the_units(
    sim: simulator.Simulator,
    oai: Callable[[str], openai.OpenAI],
    new_key: KeyFactory,
    usage_items: Callable[..., list[dict[str, Any]]],
) -> None:
    secret, record = new_key()
    raw = _chat(oai(secret), "hello there")
    assert raw.headers["x-gateway-guardrail"] == "gr1abc:1; action=none"
    assert raw.parse().choices[0].finish_reason != "content_filter"
    sources = [c.json()["source"] for c in _guardrail_calls(sim)]
    assert sources == ["INPUT", "OUTPUT"]
    (item,) = usage_items(record.key_id)
    assert item["guardrail_action"] == "none"
    assert item["guardrail_text_units"] >= 2
    assert item["cost_usd"] > item["guardrail_cost_usd"] > 0


def test_output_is_replaced_before_the_client_sees_it(
    sim: simulator.Simulator,
    oai: Callable[[str], openai.OpenAI],
    new_key: KeyFactory,
    usage_items: Callable[..., list[dict[str, Any]]],
) -> None:
    sim.guardrail_blocked_words = ["tok3"]  # the simulated model says "tok0 tok1 tok2 tok3 …"
    secret, record = new_key()
    raw = _chat(oai(secret), "count for me")
    answer = raw.parse()
    assert answer.choices[0].message.content == BLOCKED
    assert answer.choices[0].finish_reason == "content_filter"
    assert raw.headers["x-gateway-guardrail"] == "gr1abc:1; action=intervened"
    assert len(_upstream(sim)) == 1
    (item,) = usage_items(record.key_id)
    assert item["output_tokens"] > 0  # the model's tokens were spent and are billed
    assert item["guardrail_action"] == "intervened"


def test_responses_output_is_marked_incomplete(
    sim: simulator.Simulator, oai: Callable[[str], openai.OpenAI], new_key: KeyFactory
) -> None:
    sim.guardrail_blocked_words = ["tok3"]
    secret, _ = new_key()
    answer = oai(secret).responses.create(
        model=MODEL, input="count for me", instructions="be brief", extra_headers=GUARDRAIL
    )
    assert answer.status == "incomplete"
    assert answer.incomplete_details is not None
    assert answer.incomplete_details.reason == "content_filter"
    assert answer.output_text == BLOCKED
    sent = _guardrail_calls(sim)[0].json()
    assert [c["text"]["text"] for c in sent["content"]] == ["be brief", "count for me"]


def test_key_level_guardrail_applies_and_cannot_be_swapped(
    sim: simulator.Simulator, oai: Callable[[str], openai.OpenAI], new_key: KeyFactory
) -> None:
    secret, _ = new_key(guardrail="keyguard:3")
    client = oai(secret)
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-gateway-guardrail"] == "keyguard:3; action=none"
    assert _guardrail_calls(sim)[0].path == "/guardrail/keyguard/version/3/apply"
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(client, "hi")  # names gr1abc:1
    assert caught.value.code == "guardrail_not_permitted"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "a forbidden-word"}],  # no header: still held
        )


def test_fails_closed_when_the_guardrail_is_unavailable(
    sim: simulator.Simulator, oai: Callable[[str], openai.OpenAI], new_key: KeyFactory
) -> None:
    secret, _ = new_key()
    sim.inject(ErrorAnswer(path=guardrail.ROUTE_PATH, status=503))
    with pytest.raises(openai.InternalServerError) as caught:
        _chat(oai(secret), "hello")
    assert caught.value.status_code == 503
    assert caught.value.code == "guardrail_unavailable"
    assert caught.value.response.headers["x-gateway-guardrail"] == "gr1abc:1; action=none"
    assert _upstream(sim) == []
    sim.inject(ErrorAnswer(path=guardrail.ROUTE_PATH, status=429))
    with pytest.raises(openai.InternalServerError):
        _chat(oai(secret), "hello")


def test_fails_open_when_configured(
    sim: simulator.Simulator,
    start_gateway: GatewayFactory,
    new_key: KeyFactory,
    usage_items: Callable[..., list[dict[str, Any]]],
) -> None:
    door = start_gateway(bedrock_runtime_endpoint_url=sim.url, guardrail_failure_mode="open")
    secret, record = new_key()
    client = _openai(door, secret)
    sim.inject(ErrorAnswer(path=guardrail.ROUTE_PATH, status=503))
    raw = _chat(client, "hello")
    assert raw.parse().choices[0].message.content
    assert len(_upstream(sim)) == 1
    (item,) = usage_items(record.key_id)
    assert item["status"] == "ok"


def test_stage_default_guardrail_holds_every_key(
    sim: simulator.Simulator, start_gateway: GatewayFactory, new_key: KeyFactory
) -> None:
    door = start_gateway(bedrock_runtime_endpoint_url=sim.url, guardrail_default="stagegr:DRAFT")
    secret, _ = new_key()
    client = _openai(door, secret)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "forbidden-word"}]
        )
    assert _guardrail_calls(sim)[0].path == "/guardrail/stagegr/version/DRAFT/apply"
    assert _upstream(sim) == []


def test_anthropic_surface_is_guarded(
    sim: simulator.Simulator, guarded: LocalServer, new_key: KeyFactory
) -> None:
    secret, _ = new_key()
    claude = anthropic.Anthropic(base_url=guarded.url + "/anthropic", api_key=secret, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model=CLAUDE,
            max_tokens=16,
            system="you are kind",
            messages=[{"role": "user", "content": [{"type": "text", "text": "forbidden-word"}]}],
            extra_headers=GUARDRAIL,
        )
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert caught.value.body["error"]["message"] == BLOCKED  # type: ignore[index]
    assert _upstream(sim) == []
    texts = [c["text"]["text"] for c in _guardrail_calls(sim)[0].json()["content"]]
    assert texts == ["you are kind", "forbidden-word"]

    sim.guardrail_blocked_words = ["tok3"]
    answer = claude.messages.create(
        model=CLAUDE,
        max_tokens=16,
        messages=[{"role": "user", "content": f"card {CARD}"}],
        extra_headers=GUARDRAIL,
    )
    assert answer.stop_reason == "refusal"
    assert answer.content[0].text == BLOCKED  # type: ignore[union-attr]
    sent = _upstream(sim)[-1].json()
    assert sent["messages"][0]["content"] == "card {CREDIT_DEBIT_CARD_NUMBER}"


@pytest.fixture(scope="module")
def windowed(start_gateway: GatewayFactory, sim: simulator.Simulator) -> LocalServer:
    return start_gateway(bedrock_runtime_endpoint_url=sim.url, guardrail_stream_window_chars=50)


def _tokens(text: str) -> list[int]:
    return [int(word[3:]) for word in text.split() if word.startswith("tok")]


def test_stream_is_released_in_checked_windows_and_cut_at_the_intervention(
    sim: simulator.Simulator,
    windowed: LocalServer,
    new_key: KeyFactory,
    usage_items: Callable[..., list[dict[str, Any]]],
) -> None:
    secret, record = new_key()
    client = _openai(windowed, secret)
    sim.guardrail_blocked_words = ["tok30"]
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "count"}],
        max_tokens=60,
        stream=True,
        extra_headers=GUARDRAIL,
    )
    pieces: list[str] = []
    finishes: list[str] = []
    for chunk in stream:
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    text = "".join(pieces)
    assert text.endswith(BLOCKED)
    released = _tokens(text.removesuffix(BLOCKED))
    assert released == list(range(len(released)))  # in order, nothing skipped
    assert 0 < len(released) < 30  # the window holding tok30 never reached the client
    assert finishes == ["content_filter"]
    outputs = [c.json() for c in _guardrail_calls(sim) if c.json()["source"] == "OUTPUT"]
    assert len(outputs) >= 2  # checked window by window, not once at the end
    (item,) = usage_items(record.key_id)
    assert item["outcome"] == "guardrail_intervened"
    assert item["guardrail_action"] == "intervened"


def test_clean_stream_arrives_whole_after_its_window_checks(
    sim: simulator.Simulator, windowed: LocalServer, new_key: KeyFactory
) -> None:
    secret, _ = new_key()
    client = _openai(windowed, secret)
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "count"}],
        max_tokens=40,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=GUARDRAIL,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert _tokens(text) == list(range(40))
    assert chunks[-1].usage is not None
    checked = "".join(
        c.json()["content"][0]["text"]["text"]
        for c in _guardrail_calls(sim)
        if c.json()["source"] == "OUTPUT"
    )
    assert all(f"tok{i} " in checked for i in range(40))  # every released word was checked


def test_responses_and_anthropic_streams_end_filtered(
    sim: simulator.Simulator, windowed: LocalServer, new_key: KeyFactory
) -> None:
    secret, _ = new_key()
    sim.guardrail_blocked_words = ["tok20"]
    client = _openai(windowed, secret)
    events = list(
        client.responses.create(
            model=MODEL, input="count", max_output_tokens=40, stream=True, extra_headers=GUARDRAIL
        )
    )
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas.endswith(BLOCKED)
    assert "tok20" not in deltas
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "content_filter"  # type: ignore[union-attr]

    sim.message_tokens = 40
    claude = anthropic.Anthropic(
        base_url=windowed.url + "/anthropic", api_key=secret, max_retries=0
    )
    with claude.messages.stream(
        model=CLAUDE,
        max_tokens=64,
        messages=[{"role": "user", "content": "count"}],
        extra_headers=GUARDRAIL,
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.endswith(BLOCKED)
    assert "tok20" not in text
    assert final.stop_reason == "refusal"


class _AdmissionWaitsForTheGuardrail(Dynamo):
    """When armed, every DynamoDB call first waits (bounded) for the simulator to have received
    an ApplyGuardrail call, and notes whether it had: admission can only see one if the input
    check runs beside it rather than after it."""

    def __init__(self, sim: simulator.Simulator, endpoint_url: str | None) -> None:
        super().__init__(region="us-east-1", endpoint_url=endpoint_url)
        self.sim = sim
        self.armed = False
        self.saw_guardrail_first: list[bool] = []

    def call(self, operation: Any) -> Any:
        if self.armed:
            self.armed = False
            seen = threading.Event()
            for _ in range(500):  # at most ~5 s, then give up and let the call through
                if _guardrail_calls(self.sim):
                    seen.set()
                    break
                time.sleep(0.01)
            self.saw_guardrail_first.append(seen.is_set())
        return super().call(operation)


def test_input_check_runs_while_admission_waits_on_dynamodb(
    sim: simulator.Simulator,
    start_gateway: GatewayFactory,
    settings: Any,
    new_key: KeyFactory,
    usage_items: Callable[..., list[dict[str, Any]]],
) -> None:
    dynamo = _AdmissionWaitsForTheGuardrail(sim, settings.dynamodb_endpoint_url)
    door = start_gateway(bedrock_runtime_endpoint_url=sim.url, dynamo=dynamo)
    secret, record = new_key(rpm=1000)
    client = _openai(door, secret)
    hello = [{"role": "user", "content": "hello"}]
    client.chat.completions.create(model=MODEL, messages=hello)  # the key is cached now
    assert len(usage_items(record.key_id)) == 1  # and its usage write is done
    sim.reset()
    dynamo.armed = True  # the next DynamoDB call is the warm request's admission
    client.chat.completions.create(model=MODEL, messages=hello, extra_headers=GUARDRAIL)
    assert dynamo.saw_guardrail_first == [True]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "text", "content", "role", "x"]), inner, max_size=4
        )
    ),
    max_leaves=20,
)


@hypothesis.settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(
    path=st.sampled_from(["/openai/v1/chat/completions", "/openai/v1/responses"]),
    messages=_JSON,
    instructions=_JSON,
)
def test_hostile_bodies_under_a_guardrail_are_answered_never_crashed(
    guarded: LocalServer, guarded_secret: str, path: str, messages: Any, instructions: Any
) -> None:
    """Any shape of messages/input under a guardrail: a 200 or a shaped 4xx, never a 500."""
    body = {"model": MODEL, "messages": messages, "input": messages, "instructions": instructions}
    answer = httpx.post(
        guarded.url + path,
        json=body,
        headers={"authorization": f"Bearer {guarded_secret}", **GUARDRAIL},
        timeout=10,
    )
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert set(answer.json()["error"]) == {"message", "type", "code", "param"}


@pytest.fixture(scope="module")
def guarded_secret(settings: Any, dynamodb: Any) -> str:
    from datetime import UTC, datetime

    from mantle_gateway.core.auth import issue_key
    from mantle_gateway.store.keys import KeyStore

    store = KeyStore(
        Dynamo(region="us-east-1", endpoint_url=dynamodb.endpoint_url), settings.keys_table
    )
    secret, _ = issue_key(store, name="hostile", now=datetime.now(UTC))
    return secret


def test_output_check_failing_closed_withholds_the_answer_but_bills_it(
    sim: simulator.Simulator,
    oai: Callable[[str], openai.OpenAI],
    new_key: KeyFactory,
    usage_items: Callable[..., list[dict[str, Any]]],
) -> None:
    secret, record = new_key()
    sim.guardrail_failing_sources = frozenset({"OUTPUT"})
    with pytest.raises(openai.InternalServerError) as caught:
        _chat(oai(secret), "hello")
    assert caught.value.code == "guardrail_unavailable"
    assert caught.value.response.headers.get_list("x-gateway-guardrail") == [
        "gr1abc:1; action=none"
    ]
    assert len(_upstream(sim)) == 1  # the model answered; the client never saw it
    (item,) = usage_items(record.key_id)
    assert item["output_tokens"] > 0


def test_stream_whose_window_check_fails_closed_ends_with_an_error_and_no_text(
    sim: simulator.Simulator, windowed: LocalServer, new_key: KeyFactory
) -> None:
    secret, _ = new_key()
    client = _openai(windowed, secret)
    sim.guardrail_failing_sources = frozenset({"OUTPUT"})
    seen: list[str] = []

    def read() -> None:
        for chunk in client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "count"}],
            max_tokens=40,
            stream=True,
            extra_headers=GUARDRAIL,
        ):
            seen.extend(c.delta.content or "" for c in chunk.choices)

    with pytest.raises(openai.APIError, match="guardrail"):
        read()
    assert "".join(seen) == ""  # the first window was never checked, so none of it was sent
