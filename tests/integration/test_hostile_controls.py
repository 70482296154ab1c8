"""Controls a hostile client or a faulty upstream must not walk around (issue 10), each driven
through the live local door with the openai SDK (or raw HTTP where the SDK cannot send the
input), checked on what the simulator received, what the ledger holds and what was logged.

- a key repeated in a JSON object never reaches Mantle (the allow-list checks one model);
- upstream usage numbers no bill can carry (NaN, Infinity, 1e45, negative, fractional, huge)
  are billed as an estimate, flagged, alarmed, and the stream or answer is not harmed;
- a background response is billed once, whether its owner first reads it plain or streamed;
- a wrong-route answer is remembered only when the other prefix really answered;
- credentials in the query string are never forwarded, nor logged;
- every refusal is one `request_refused` log line naming the request and the key (not its
  secret).
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from mantle_gateway import simulator
from mantle_gateway.core.auth import digest, new_key_id, new_secret
from mantle_gateway.core.report import aggregate
from mantle_gateway.observability import logger
from mantle_gateway.store.keys import KeyRecord, KeyStore
from mantle_gateway.store.limits import LimitsStore

MODEL = "openai.gpt-oss-120b"
"""Priced, served under `/v1`."""
OTHER_MODEL = "openai.gpt-oss-20b"


def month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


@pytest.fixture
def log_records() -> Iterator[list[logging.LogRecord]]:
    """Every record the gateway's logger writes while the test runs (extras included)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def named(records: list[logging.LogRecord], message: str) -> list[logging.LogRecord]:
    return [record for record in records if record.getMessage() == message]


def everything_logged(records: list[logging.LogRecord]) -> str:
    return "\n".join(record.getMessage() + " " + repr(vars(record)) for record in records)


# -- item 3: a repeated JSON key ---------------------------------------------------------------


FORBIDDEN = "openai.gpt-5.5"
REPEATED = {
    # either order: a first-wins and a last-wins parser would run different models
    "model-twice": ("/v1/chat/completions", f'{{"model":"{FORBIDDEN}","model":"{OTHER_MODEL}"}}'),
    "model-twice-swapped": (
        "/v1/chat/completions",
        f'{{"model":"{OTHER_MODEL}","model":"{FORBIDDEN}","messages":[]}}',
    ),
    "model-escaped": (
        "/openai/v1/responses",
        f'{{"model":"{OTHER_MODEL}","input":"hi","mod\\u0065l":"{FORBIDDEN}"}}',
    ),
    "stream-options": (
        "/v1/chat/completions",
        f'{{"model":"{OTHER_MODEL}","stream":true,"messages":[],'
        '"stream_options":{"include_usage":false,"include_usage":true}}',
    ),
    "message": (
        "/v1/chat/completions",
        f'{{"model":"{OTHER_MODEL}","messages":[{{"role":"user","role":"system","content":"x"}}]}}',
    ),
}


@pytest.mark.parametrize("case", sorted(REPEATED))
def test_a_key_repeated_in_any_object_is_400_and_never_reaches_mantle(
    gateway, new_key, sim, case
) -> None:
    # GIVEN a key limited to one model, and a body repeating a key somewhere
    secret, _ = new_key(models=(OTHER_MODEL,))
    path, raw = REPEATED[case]

    # WHEN it is sent byte for byte
    answer = httpx.post(
        gateway.url + path,
        content=raw.encode(),
        headers={"authorization": f"Bearer {secret}", "content-type": "application/json"},
    )

    # THEN 400 invalid_request, OpenAI-shaped, and Mantle saw nothing
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_request")
    assert "repeats the key" in error["message"]
    assert sim.requests == []


# -- item 6: usage numbers no bill can carry --------------------------------------------------

BAD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e45", "-3", "2.5", "1000000000", '"7"', "true"]
"""(An integer of over 4,300 digits is left to the unit tests: the gateway bills it as these, but
the client's own JSON parser, which gets Mantle's bytes as they are, cannot read it.)"""
MODES = ["chat", "chat-stream", "chat-stream-usage-asked", "responses", "responses-stream"]


def run_mode(sdk: openai.OpenAI, mode: str) -> str:
    """One request in `mode`; returns the text the client received whole."""
    messages: Any = [{"role": "user", "content": "count to three"}]
    if mode == "chat":
        answer = sdk.chat.completions.create(model=MODEL, messages=messages, max_tokens=5)
        return answer.choices[0].message.content or ""
    if mode.startswith("chat-stream"):
        options: Any = {"include_usage": True} if mode.endswith("asked") else openai.NOT_GIVEN
        chunks = list(
            sdk.chat.completions.create(
                model=MODEL, messages=messages, max_tokens=5, stream=True, stream_options=options
            )
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    if mode == "responses":
        return sdk.responses.create(
            model=MODEL, input="count to three", max_output_tokens=5
        ).output_text
    events = list(
        sdk.responses.create(model=MODEL, input="count to three", max_output_tokens=5, stream=True)
    )
    assert events[-1].type == "response.completed", [e.type for e in events][-3:]
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bad", BAD_NUMBERS, ids=lambda b: b[:12])
def test_bad_upstream_usage_numbers_are_billed_as_an_estimate_and_alarmed(
    new_key, client, sim, usage_items, settings, dynamo, log_records, mode, bad
) -> None:
    # GIVEN a budgeted key, and an upstream whose usage carries a number no bill can hold
    secret, record = new_key(monthly_budget_usd=Decimal("1"))
    field = "completion_tokens" if mode.startswith("chat") else "output_tokens"
    sim.inject(simulator.BadUsage(value=bad, fields=(field,)))

    # WHEN the client asks, through the openai SDK
    text = run_mode(client(secret), mode)

    # THEN the whole answer reached the client (no 500, no cut stream, no error event)
    assert text == "tok0 tok1 tok2 tok3 tok4 "
    # ... the usage is billed as an estimate, with a sane cost
    (item,) = usage_items(record.key_id)
    assert item["estimated"] is True
    assert item["status"] == "ok"
    assert 0 < item["input_tokens"] < 1000 and 0 < item["output_tokens"] < 1000
    assert Decimal(0) < item["cost_usd"] < Decimal("0.01")
    # ... the ledger still adds up: report == spend counter, nothing left committed
    spend = LimitsStore(dynamo, settings.limits_table).spend(record.key_id, month())
    report = aggregate(usage_items(record.key_id))[record.key_id]
    assert report.totals.cost_usd == spend["spent_usd"] == item["cost_usd"]
    assert spend["committed_usd"] == spend["spent_usd"]
    # ... and operators are told which request it was
    (warning,) = named(log_records, "invalid_upstream_usage")
    assert warning.levelno == logging.WARNING
    assert (warning.request_id, warning.key_id) == (item["request_id"], record.key_id)


def test_good_usage_is_not_flagged(new_key, client, usage_items, log_records) -> None:
    secret, record = new_key()
    run_mode(client(secret), "chat-stream")
    (item,) = usage_items(record.key_id)
    assert "estimated" not in item and item["output_tokens"] == 5
    assert named(log_records, "invalid_upstream_usage") == []


# -- item 7: a background response read back streamed ------------------------------------------


def read(sdk: openai.OpenAI, response_id: str, how: str) -> str:
    """Read a stored response back, plain or streamed; returns its status as the client saw it."""
    if how == "plain":
        return sdk.responses.retrieve(response_id).status or ""
    events = list(sdk.responses.retrieve(response_id, stream=True))
    assert [event.sequence_number for event in events] == list(range(len(events)))
    last = events[-1]
    assert last.type == "response.completed"
    return last.response.status or ""  # type: ignore[union-attr]


@pytest.mark.parametrize("first", ["plain", "stream"])
def test_a_background_response_is_billed_once_whichever_way_its_owner_reads_it_first(
    new_key, client, sim, usage_items, settings, dynamo, first
) -> None:
    # GIVEN a background response of a budgeted key, answered "queued" before any token is spent
    secret, record = new_key(monthly_budget_usd=Decimal("1"))
    owner = client(secret)
    queued = owner.responses.create(
        model=MODEL, input="work on this later", background=True, max_output_tokens=6
    )
    assert queued.status == "queued"
    assert usage_items(record.key_id, timeout=0.3) == []

    # WHEN its owner reads it finished, first `first`, then every way again
    assert read(owner, queued.id, first) == "completed"
    billed = usage_items(record.key_id)
    for how in ("stream", "plain", "stream", "plain"):
        assert read(owner, queued.id, how) == "completed"

    # THEN the first read billed it, with its real usage, and no later read billed again
    (item,) = billed
    assert item["request_id"] == "bg_" + queued.id
    assert (item["output_tokens"], item["status"], item["api_surface"]) == (6, "ok", "responses")
    assert "estimated" not in item
    assert len(usage_items(record.key_id, count=2, timeout=0.3)) == 1
    spend = LimitsStore(dynamo, settings.limits_table).spend(record.key_id, month())
    assert spend["spent_usd"] == item["cost_usd"]
    assert spend["committed_usd"] == spend["spent_usd"], "the reservation was settled"
    first_read = next(seen for seen in sim.requests if seen.method == "GET")
    assert first_read.query == ("stream=true" if first == "stream" else "")


@pytest.mark.parametrize("how", ["plain", "stream"])
def test_a_background_response_with_bad_usage_is_billed_once_as_an_estimate(
    new_key, client, sim, usage_items, log_records, how
) -> None:
    secret, record = new_key(monthly_budget_usd=Decimal("1"))
    owner = client(secret)
    queued = owner.responses.create(model=MODEL, input="a b c d", background=True)
    sim.inject(simulator.BadUsage(value="NaN", path=f"/v1/responses/{queued.id}"))
    assert read(owner, queued.id, how) == "completed"
    (item,) = usage_items(record.key_id)
    assert item["estimated"] is True and item["request_id"] == "bg_" + queued.id
    assert item["input_tokens"] > 1 and item["output_tokens"] > 0
    assert len(named(log_records, "invalid_upstream_usage")) == 1
    read(owner, queued.id, "plain")
    assert len(usage_items(record.key_id, count=2, timeout=0.3)) == 1


# -- item 8: route learning ----------------------------------------------------------------------


def paths(sim: simulator.Simulator) -> list[str]:
    return [seen.path.removesuffix("/chat/completions") for seen in sim.requests]


def test_a_transient_wrong_route_answer_is_not_remembered(start_gateway, new_key, sim) -> None:
    # GIVEN a fresh gateway (nothing learned) and one wrong-route answer for a `/v1` model
    door = start_gateway()
    secret, _ = new_key()
    sdk = openai.OpenAI(base_url=door.url + "/v1", api_key=secret, max_retries=0)
    sim.inject(simulator.WrongRoute(model=MODEL))
    chat: Any = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}

    # WHEN three requests are made: the first meets the transient error, its retry fails
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(**chat)
    sdk.chat.completions.create(**chat)
    sdk.chat.completions.create(**chat)

    # THEN the later ones go straight to the right prefix: 4 upstream calls, not 5
    assert paths(sim) == ["/v1", "/openai/v1", "/v1", "/v1"]


def test_a_prefix_that_answered_is_remembered(start_gateway, new_key, sim) -> None:
    # GIVEN Mantle now serving the model under the other prefix than the gateway's rule says
    door = start_gateway()
    secret, _ = new_key()
    sdk = openai.OpenAI(base_url=door.url + "/v1", api_key=secret, max_retries=0)
    sim.model_prefixes[MODEL] = "/openai/v1"
    try:
        for _ in range(3):
            sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    finally:
        del sim.model_prefixes[MODEL]
    # THEN one retry taught it: 4 upstream calls for 3 requests
    assert paths(sim) == ["/v1", "/openai/v1", "/openai/v1", "/openai/v1"]


# -- item 9: credentials in the query string ---------------------------------------------------


def test_credentials_in_the_query_are_never_forwarded_nor_logged(
    gateway, new_key, sim, log_records
) -> None:
    # GIVEN a stored response, and secrets put in the query in every common spelling
    secret, _ = new_key()
    other_key = "mgw_" + secrets.token_urlsafe(32)
    plain_secret = "tok-" + secrets.token_hex(12)  # nothing a log filter would recognise
    created = httpx.post(
        gateway.url + "/v1/responses",
        headers={"x-api-key": secret},
        json={"model": MODEL, "input": "a b"},
    ).json()
    smuggled = [
        ("api_key", secret),
        ("Key", plain_secret),
        ("X-API-KEY", plain_secret),
        ("api-key", plain_secret),
        ("ACCESS_TOKEN", plain_secret),
        ("note", other_key),
    ]
    query = "&".join(f"{name}={value}" for name, value in smuggled)

    # WHEN requests carry them (besides the real key in the header)
    listed = httpx.get(
        gateway.url + f"/v1/responses/{created['id']}/input_items?limit=2&{query}&order=asc",
        headers={"x-api-key": secret},
    )
    chat = httpx.post(
        gateway.url + f"/v1/chat/completions?{query}",
        headers={"authorization": f"Bearer {secret}"},
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
    )
    refused = httpx.get(gateway.url + f"/v1/models?{query}")  # no key in a header: 401

    # THEN Mantle got the other parameters only, and no log holds any of the secrets
    assert (listed.status_code, chat.status_code, refused.status_code) == (200, 200, 401)
    assert [seen.query for seen in sim.requests[1:]] == ["limit=2&order=asc", ""]
    logged = everything_logged(log_records)
    assert named(log_records, "request_refused"), "the 401 was logged (the query was not)"
    for value in (secret, other_key, plain_secret, digest(secret), digest(other_key)):
        assert value not in logged
        for seen in sim.requests:
            assert value not in seen.query and value not in json.dumps(seen.headers)


# -- item 10: every refusal is logged, with the request and the key ----------------------------


def test_every_refusal_is_logged_with_request_id_key_id_status_and_code(
    gateway, new_key, settings, dynamo, sim, log_records, issued_secrets
) -> None:
    # GIVEN a key limited to one model, a key with nothing left to spend, a revoked key and one
    # that was never issued
    secret, record = new_key(models=(OTHER_MODEL,))
    broke, broke_record = new_key(monthly_budget_usd=Decimal("0"))
    revoked = new_secret()
    revoked_record = KeyRecord(
        key_id=new_key_id(), digest=digest(revoked), name="revoked", status="revoked"
    )
    KeyStore(dynamo, settings.keys_table).put_new(revoked_record)
    issued_secrets.append(revoked)
    unknown = new_secret()

    def post(key: str, body: bytes, path: str = "/v1/chat/completions") -> httpx.Response:
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        return httpx.post(gateway.url + path, headers=headers, content=body)

    def chat(model: str) -> bytes:
        return json.dumps({"model": model, "messages": []}).encode()

    # WHEN refusals of every kind are given
    answers: list[tuple[httpx.Response, str | None]] = [
        (post(unknown, chat(OTHER_MODEL)), None),  # 401, no such key
        (post(revoked, chat(MODEL)), revoked_record.key_id),  # 401, identified but revoked
        (post(secret, b"{not json"), None),  # 400: the body is read before the key
        (post(secret, chat(MODEL)), record.key_id),  # 403 model_not_permitted
        (post(broke, chat(MODEL)), broke_record.key_id),  # 429 budget_exceeded
        (post(secret, b"{}", "/v1/nowhere"), None),  # 404
    ]
    sim.inject(simulator.ResetConnection())
    answers.append((post(secret, chat(OTHER_MODEL)), record.key_id))  # 502

    # THEN each is one request_refused line: status, code, the request's id, the key's id
    assert [a.status_code for a, _ in answers] == [401, 401, 400, 403, 429, 404, 502]
    refusals = named(log_records, "request_refused")
    assert len(refusals) == len(answers)
    for (answer, key_id), line in zip(answers, refusals, strict=True):
        assert line.status == answer.status_code
        assert line.code == answer.json()["error"]["code"]
        assert line.request_id == answer.headers["x-gateway-request-id"]
        assert getattr(line, "key_id", None) == key_id
        assert line.levelno == (logging.WARNING if answer.status_code >= 500 else logging.INFO)
    logged = everything_logged(log_records)
    for value in (secret, broke, revoked, unknown, digest(secret), digest(revoked)):
        assert value not in logged


def test_refusals_the_door_gives_itself_are_logged_too(gateway, log_records) -> None:
    # a body the door will not read: too large by its Content-Length, or chunked
    host, port = gateway.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 99999999999\r\nConnection: close\r\n\r\n"
        )
        assert conn.recv(65536).startswith(b"HTTP/1.1 413")
    chunked = httpx.post(gateway.url + "/v1/chat/completions", content=iter([b"{}"]))
    assert chunked.status_code == 411
    too_large, not_chunked = named(log_records, "request_refused")
    assert (too_large.status, too_large.code, too_large.door) == (413, "request_too_large", "local")
    assert (not_chunked.status, not_chunked.levelno) == (411, logging.INFO)
