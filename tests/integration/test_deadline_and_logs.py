"""Two drills on the edges of a request: the Lambda's time running out, and what reaches the logs.

Deadline: the Lambda door is driven through `lambda_entry.handle_event` (the seam the streaming
runtime calls) with a Function URL event and a context with ~2.5 s left, against a gateway built
by `wiring.build` over the session's simulator and DynamoDB. The body is consumed as the runtime
does (iterate, then close once), and the ledger is read straight from DynamoDB.

Logs: one run of varied requests (successes, wrong keys, upstream refusals, a cut stream, a
failing usage write, an unexpected exception) with every log destination captured — the gateway's
Powertools logger as its formatter writes it, the root logger, and the process's stdout/stderr —
and no key, AWS secret or Authorization value (Bearer or SigV4 `Signature=`) may appear.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from mantle_gateway import simulator
from mantle_gateway.observability import logger
from mantle_gateway.store.dynamo import Dynamo
from mantle_gateway.store.limits import LimitsStore
from tests.support.dynamo_faults import DynamoTap, refusing, tapped
from tests.support.lambda_door import LambdaContext, function_url_event, invoke

MODEL = "openai.gpt-oss-120b"
NEARLY_SPENT_MS = 2500
"""Time left in the Lambda: the gateway keeps ~1 s for itself, so ~1.5 s for the upstream."""
SLOW_EVENTS = 0.25
"""Seconds between two upstream stream events: 200 tokens would take 50 s."""


# -- the Lambda door with its time nearly spent ----------------------------------------------


@dataclass(frozen=True)
class SSEEvent:
    name: str | None
    data: bytes


def sse_events(stream: bytes) -> list[SSEEvent]:
    events = []
    for block in stream.split(b"\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].strip())
        events.append(SSEEvent(name, b"\n".join(data)))
    return events


def is_error(event: SSEEvent) -> bool:
    if event.name == "error":
        return True
    if event.data == b"[DONE]":
        return False
    payload = json.loads(event.data)
    return "error" in payload or payload.get("type") == "error"


SURFACES = {
    "chat_completions": (
        "/openai/v1/chat/completions",
        {"messages": [{"role": "user", "content": "count slowly"}], "max_tokens": 200},
    ),
    "responses": ("/openai/v1/responses", {"input": "count slowly", "max_output_tokens": 200}),
}


@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_stream_cut_by_the_lambda_deadline_ends_cleanly_and_is_billed_incomplete(
    lambda_gateway, new_key, sim, usage_items, surface
) -> None:
    # GIVEN an upstream stream far slower than the time the Lambda has left
    sim.event_delay = SLOW_EVENTS
    key, record = new_key()
    path, fields = SURFACES[surface]
    event = function_url_event(path, key, {"model": MODEL, "stream": True, **fields})
    context = LambdaContext(NEARLY_SPENT_MS)

    # WHEN the Function URL event is handled and its body read to the end
    result, stream = invoke(lambda_gateway, event, context)

    # THEN the client got a 200 stream that ends with one SSE error event, then [DONE]
    assert result["statusCode"] == 200
    assert result["headers"]["content-type"].startswith("text/event-stream")
    assert result["headers"]["x-gateway-request-id"] == context.aws_request_id
    events = sse_events(stream)
    assert events[-1].data == b"[DONE]"
    assert [e.data for e in events].count(b"[DONE]") == 1
    errors = [e for e in events if is_error(e)]
    assert errors == [events[-2]], "exactly one error event, right before [DONE]"
    error = json.loads(errors[0].data)
    error = error.get("error", error)
    assert error["code"] == "deadline"
    assert error["message"]
    assert len(events) > 2, "what arrived before the deadline was relayed"
    assert key.encode() not in stream

    # AND the usage is recorded as incomplete, cut by the deadline, with what was relayed
    (item,) = usage_items(record.key_id)
    assert item["request_id"] == context.aws_request_id
    assert item["status"] == "incomplete"
    assert item["outcome"] == "deadline"
    assert item["door"] == "function_url"
    assert item["stream"] is True
    assert item["api_surface"] == surface
    assert item["estimated"] is True, "the upstream never got to send its usage"
    assert 1 <= item["output_tokens"] < 200


@pytest.mark.parametrize(
    ("remaining_ms", "upstream_called"),
    [(NEARLY_SPENT_MS, True), (900, False)],
    ids=["first-byte-too-late", "no-time-to-call"],
)
def test_deadline_before_the_first_byte_answers_504_and_bills_nothing(
    lambda_gateway, new_key, sim, usage_items, settings, dynamo, remaining_ms, upstream_called
) -> None:
    # GIVEN an upstream whose first byte comes after the Lambda's end, and a budgeted key
    sim.inject(simulator.DelayHeaders(seconds=5))
    key, record = new_key(monthly_budget_usd=Decimal("5"))
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    event = function_url_event("/v1/chat/completions", key, body)

    # WHEN the event is handled with this little time left
    result, content = invoke(lambda_gateway, event, LambdaContext(remaining_ms))

    # THEN an OpenAI-shaped 504 (JSON, not a stream), nothing billed, the reservation given back
    assert result["statusCode"] == 504
    error = json.loads(content)["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert (error["type"], error["code"]) == ("upstream_error", "upstream_timeout")
    assert bool(sim.requests) is upstream_called
    assert usage_items(record.key_id, timeout=0.3) == []
    month = datetime.now(UTC).strftime("%Y-%m")
    spend = LimitsStore(dynamo, settings.limits_table).spend(record.key_id, month)
    assert spend["spent_usd"] == 0
    assert spend["committed_usd"] == 0, "the budget reservation was released"


# -- nothing secret in any log ---------------------------------------------------------------


def explode(params: dict[str, Any], request: httpx.Request) -> None:
    """A failure no store code expects (not a DynamoDB error): the gateway's last resort."""
    raise RuntimeError("injected: the limit store exploded")


def recording_dynamo(settings, authorizations: list[str]) -> tuple[Dynamo, DynamoTap]:
    """A Dynamo whose stores' requests have their Authorization header noted."""
    dynamo, tap = tapped(settings)

    def remember(params: dict[str, Any], request: httpx.Request) -> None:
        authorizations.append(request.headers.get("authorization", ""))

    tap.before("*", remember)
    return dynamo, tap


class EverythingFormatter(logging.Formatter):
    """The line and every attribute of the record (extras included), whoever logged it."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record) + " " + repr(vars(record))


@pytest.fixture
def captured_logs(tmp_path, settings) -> Iterator[Callable[[], str]]:
    """The gateway's logger (through its own formatter) and the root logger, into files."""
    gateway_log, root_log = tmp_path / "gateway.log", tmp_path / "root.log"
    own = logging.FileHandler(gateway_log)
    own.setFormatter(logger.registered_formatter)
    root = logging.FileHandler(root_log)
    root.setFormatter(EverythingFormatter("%(name)s %(levelname)s %(message)s"))
    logger.addHandler(own)
    logging.getLogger().addHandler(root)
    try:
        yield lambda: gateway_log.read_text() + "\n" + root_log.read_text()
    finally:
        logger.removeHandler(own)
        logging.getLogger().removeHandler(root)
        own.close()
        root.close()
        logger.setLevel(settings.log_level)  # the doors below log at DEBUG; the session at INFO


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def signatures(authorizations: list[str]) -> list[str]:
    return [m for a in authorizations for m in re.findall(r"Signature=([0-9a-f]{64})", a)]


def test_no_key_aws_secret_or_authorization_value_reaches_any_log(
    start_gateway, settings, new_key, sim, usage_items, captured_logs, capfd, monkeypatch
) -> None:
    # GIVEN an AWS secret of our own in the environment (the DynamoDB clients sign with it),
    # three doors logging at DEBUG — a healthy one, one whose usage writes DynamoDB refuses,
    # one whose limit store fails in a way nothing expects — and the keys used on them
    env_secret = "envSecret/" + secrets.token_urlsafe(24)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", env_secret)
    dynamo_authorizations: list[str] = []
    healthy, _ = recording_dynamo(settings, dynamo_authorizations)
    failing, failing_tap = recording_dynamo(settings, dynamo_authorizations)
    failing_tap.before("TransactWriteItems", refusing())
    exploding, exploding_tap = recording_dynamo(settings, dynamo_authorizations)
    exploding_tap.before("UpdateItem", explode)
    door = start_gateway(dynamo=healthy, log_level="DEBUG").url
    broken_ledger_door = start_gateway(dynamo=failing, log_level="DEBUG").url
    exploding_limits_door = start_gateway(dynamo=exploding, log_level="DEBUG").url
    key, record = new_key()
    budget_key, budget_record = new_key(monthly_budget_usd=Decimal("5"))
    limited_key, _ = new_key(rpm=1)
    ledger_key, _ = new_key()
    exploding_key, _ = new_key(rpm=100)
    wrong_key = "mgw_" + secrets.token_urlsafe(32)  # well-formed, never issued
    garbage = "garbage-" + secrets.token_hex(16)
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}

    def post(url: str, path: str, headers: dict[str, str], body: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(url + path, headers=headers, content=content, timeout=15)

    def auth(value: str) -> dict[str, str]:
        return {"authorization": f"Bearer {value}", "content-type": "application/json"}

    # WHEN a varied run of requests is served
    # ... successes: buffered and streamed chat, a stored response read back and deleted
    assert post(door, "/v1/chat/completions", auth(key), chat).status_code == 200
    streamed = post(
        door, "/v1/chat/completions", {"x-api-key": budget_key}, chat | {"stream": True}
    )
    assert streamed.status_code == 200
    created = post(door, "/openai/v1/responses", auth(key), {"model": MODEL, "input": "hi"})
    assert created.status_code == 200
    stored = "/openai/v1/responses/" + created.json()["id"]
    assert httpx.get(door + stored, headers=auth(key), timeout=15).status_code == 200
    assert httpx.delete(door + stored, headers=auth(key), timeout=15).status_code == 200
    # ... 401s: an unknown key, a garbage Bearer value, an unknown key as x-api-key
    for headers in (auth(wrong_key), auth(garbage), {"x-api-key": wrong_key}):
        assert post(door, "/v1/chat/completions", headers, chat).status_code == 401
    # ... upstream refusals: a 429 with retry-after, a reset connection (502)
    sim.inject(simulator.ErrorAnswer(status=429, headers={"retry-after": "3"}))
    assert post(door, "/v1/chat/completions", auth(key), chat).status_code == 429
    sim.inject(simulator.ResetConnection())
    assert post(door, "/v1/chat/completions", auth(key), chat).status_code == 502
    # ... the gateway's own rate limit (1 rpm: three requests span two minutes at most)
    limited = [post(door, "/v1/chat/completions", auth(limited_key), chat) for _ in range(3)]
    assert 429 in [answer.status_code for answer in limited]
    # ... a stream the upstream cuts mid-way
    sim.inject(simulator.DropMidStream(after_events=3))
    cut = post(door, "/v1/chat/completions", auth(key), chat | {"stream": True})
    assert cut.status_code == 200
    assert b'"upstream_dropped"' in cut.content
    # ... an unexpected failure inside the gateway (logged with its traceback, answered 500)
    unexpected = post(exploding_limits_door, "/v1/chat/completions", auth(exploding_key), chat)
    assert unexpected.status_code == 500
    # ... a usage write DynamoDB refuses: the whole item goes to one log line
    assert (
        post(broken_ledger_door, "/v1/chat/completions", auth(ledger_key), chat).status_code == 200
    )

    usage_items(record.key_id, count=3)  # chat, response, cut stream: all logging done
    usage_items(budget_record.key_id, count=1)
    wait_for(lambda: "usage_write_failed" in captured_logs(), "the usage_write_failed line")

    # THEN the logs were captured (the checks below are not vacuous) …
    logs = captured_logs()
    out, err = capfd.readouterr()
    everything = "\n".join([logs, out, err])
    for expected in (
        "usage_write_failed",
        "upstream_refused",
        "request_refused",
        "unhandled_error",
    ):
        assert expected in logs
    upstream_authorizations = [s.headers["authorization"] for s in sim.requests]
    assert signatures(upstream_authorizations), "the upstream calls were signed"
    assert signatures(dynamo_authorizations), "the DynamoDB calls were signed"

    # … and hold no gateway key, no AWS secret, no Authorization value
    keys = [key, budget_key, limited_key, ledger_key, exploding_key, wrong_key]
    forbidden = {
        **{f"gateway key {k[:8]}…": k for k in keys},
        **{f"middle of key {k[:8]}…": k[4:20] for k in keys},
        **{f"Bearer value of {k[:8]}…": f"Bearer {k}" for k in keys},
        "garbage Bearer value": garbage,
        "simulator secret key": simulator.SIMULATOR_SECRET_KEY,
        "AWS_SECRET_ACCESS_KEY": env_secret,
    }
    for number, value in enumerate(upstream_authorizations + dynamo_authorizations):
        forbidden[f"Authorization header #{number}"] = value
    for number, value in enumerate(signatures(upstream_authorizations + dynamo_authorizations)):
        forbidden[f"SigV4 signature #{number}"] = value
    leaked = sorted(name for name, value in forbidden.items() if value in everything)
    assert leaked == [], f"secrets found in the logs: {leaked}"
