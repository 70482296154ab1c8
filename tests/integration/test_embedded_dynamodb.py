"""The embedded DynamoDB's transactions: their cost no longer grows with the table, and a
cancelled transaction still leaves nothing behind (moto_fixes, docs/decisions/0008).

Costs are counted (stored items deep-copied per transaction), never timed."""

from __future__ import annotations

import http.client
import socket
import uuid
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models.dynamo_type import Item

from mantle_gateway import schema
from mantle_gateway.settings import Settings
from mantle_gateway.store.dynamo import Dynamo, from_item, to_item
from mantle_gateway.store.ledger import WRITTEN, Ledger
from mantle_gateway.store.limits import spend_pk


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many stored items moto deep-copies, counted from now on (one counter, in a list)."""
    counter = [0]
    original = Item.__deepcopy__

    def counted(self: Item, memo: dict[int, Any]) -> Item:
        counter[0] += 1
        return original(self, memo)

    monkeypatch.setattr(Item, "__deepcopy__", counted)
    return counter


def usage_item(key_id: str, n: int) -> dict[str, Any]:
    return {
        schema.USAGE_PK: f"{key_id}#2026-05",
        schema.USAGE_SK: f"2026-05-01T00:00:00.{n:06d}Z#req-{n}",
        schema.USAGE_MONTH_ATTR: "2026-05",
        "key_id": key_id,
        "request_id": f"req-{n}",
        "cost_usd": Decimal("0.001"),
    }


def fill_usage(dynamo: Dynamo, settings: Settings, key_id: str, count: int, start: int) -> None:
    for first in range(start, start + count, 25):
        requests: list[Any] = [
            {"PutRequest": {"Item": to_item(usage_item(key_id, n))}}
            for n in range(first, min(first + 25, start + count))
        ]
        dynamo.client.batch_write_item(RequestItems={settings.usage_table: requests})


def test_a_usage_transaction_copies_the_same_few_items_however_many_are_stored(
    settings: Settings, dynamo: Dynamo, copies: list[int]
) -> None:
    # GIVEN a key whose usage table partition fills up between two ledger writes
    key_id = "k-" + uuid.uuid4().hex[:12]
    ledger = Ledger(dynamo, usage_table=settings.usage_table, limits_table=settings.limits_table)
    fill_usage(dynamo, settings, key_id, 10, start=0)
    assert ledger.write_item(usage_item(key_id, 10_000)) == WRITTEN  # its spend item exists now
    copies[0] = 0

    # WHEN one usage transaction runs with 10 items stored, then another with 1,010
    assert ledger.write_item(usage_item(key_id, 10_001)) == WRITTEN
    with_ten = copies[0]
    fill_usage(dynamo, settings, key_id, 1_000, start=10)
    copies[0] = 0
    assert ledger.write_item(usage_item(key_id, 10_002)) == WRITTEN
    with_thousand = copies[0]

    # THEN each copied only the items it touches (moto's own rollback copied every table)
    assert with_ten == with_thousand
    assert with_thousand <= 4, with_thousand


def item_state(dynamo: Dynamo, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    found = dynamo.client.get_item(TableName=table, Key=to_item(key), ConsistentRead=True)
    return from_item(found["Item"]) if "Item" in found else None


@pytest.fixture
def scene(settings: Settings, dynamo: Dynamo) -> dict[str, Any]:
    """Two existing spend items (one to change, one to check) and the keys of items a
    transaction would create."""
    key_id = "k-" + uuid.uuid4().hex[:12]
    spend = {schema.LIMITS_PK: spend_pk(key_id, "2026-05")}
    guard = {schema.LIMITS_PK: spend_pk(key_id, "2026-04")}
    for key in (spend, guard):
        dynamo.client.put_item(
            TableName=settings.limits_table,
            Item=to_item(key | {"spent_usd": Decimal("1.5"), "requests": 3}),
        )
    new_usage = usage_item(key_id, 1)
    return {
        "spend": spend,
        "guard": guard,
        "usage": new_usage,
        "usage_key": {k: new_usage[k] for k in (schema.USAGE_PK, schema.USAGE_SK)},
        "created": {schema.LIMITS_PK: spend_pk(key_id, "2026-06")},
    }


def actions(settings: Settings, scene: dict[str, Any], last: dict[str, Any]) -> list[Any]:
    """Put a new usage item, add to the existing spend, create a spend item, then `last`."""
    add = {
        "UpdateExpression": "ADD spent_usd :cost, requests :one",
        "ExpressionAttributeValues": {":cost": {"N": "0.25"}, ":one": {"N": "1"}},
    }
    return [
        {"Put": {"TableName": settings.usage_table, "Item": to_item(scene["usage"])}},
        {"Update": {"TableName": settings.limits_table, "Key": to_item(scene["spend"]), **add}},
        {"Update": {"TableName": settings.limits_table, "Key": to_item(scene["created"]), **add}},
        last,
    ]


def guard_check(
    settings: Settings, scene: dict[str, Any], condition: str, values: Any = None
) -> dict[str, Any]:
    """A ConditionCheck on the scene's guard item (which no other action touches)."""
    check = {
        "TableName": settings.limits_table,
        "Key": to_item(scene["guard"]),
        "ConditionExpression": condition,
    }
    return {"ConditionCheck": check | ({"ExpressionAttributeValues": values} if values else {})}


def assert_untouched(settings: Settings, dynamo: Dynamo, scene: dict[str, Any]) -> None:
    assert item_state(dynamo, settings.usage_table, scene["usage_key"]) is None
    assert item_state(dynamo, settings.limits_table, scene["created"]) is None
    spend = item_state(dynamo, settings.limits_table, scene["spend"])
    assert spend is not None
    assert (spend["spent_usd"], spend["requests"]) == (Decimal("1.5"), 3)


def test_a_transaction_cancelled_by_its_last_condition_leaves_every_item_as_it_was(
    settings: Settings, dynamo: Dynamo, scene: dict[str, Any]
) -> None:
    # GIVEN three actions moto applies one by one, then a condition that fails
    failing = guard_check(settings, scene, "spent_usd > :high", {":high": {"N": "100"}})

    # WHEN the transaction runs
    with pytest.raises(ClientError) as raised:
        dynamo.client.transact_write_items(TransactItems=actions(settings, scene, failing))

    # THEN it is cancelled with one reason per action, and nothing it did is left
    error = raised.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in error["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    assert_untouched(settings, dynamo, scene)


def test_a_transaction_naming_one_item_twice_is_refused_and_rolled_back(
    settings: Settings, dynamo: Dynamo, scene: dict[str, Any]
) -> None:
    # GIVEN the same actions, the last one putting the first action's usage item again
    again = {"Put": {"TableName": settings.usage_table, "Item": to_item(scene["usage"])}}

    # WHEN the transaction runs
    with pytest.raises(ClientError) as raised:
        dynamo.client.transact_write_items(TransactItems=actions(settings, scene, again))

    # THEN moto refuses it midway (after applying the first three) and nothing is left
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert_untouched(settings, dynamo, scene)


def test_a_transaction_that_passes_applies_every_action(
    settings: Settings, dynamo: Dynamo, scene: dict[str, Any]
) -> None:
    passing = guard_check(settings, scene, "attribute_exists(spent_usd)")
    dynamo.client.transact_write_items(TransactItems=actions(settings, scene, passing))

    assert item_state(dynamo, settings.usage_table, scene["usage_key"]) == scene["usage"]
    spend = item_state(dynamo, settings.limits_table, scene["spend"])
    created = item_state(dynamo, settings.limits_table, scene["created"])
    assert spend is not None and created is not None
    assert (spend["spent_usd"], spend["requests"]) == (Decimal("1.75"), 4)
    assert (created["spent_usd"], created["requests"]) == (Decimal("0.25"), 1)


# -- work kept between calls (moto_fixes: parsed expressions, the DynamoDB app) ----------------


@pytest.fixture
def tokenized(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The update expressions moto tokenizes from now on."""
    from moto.dynamodb.parsing.tokens import ExpressionTokenizer

    seen: list[str] = []
    original = ExpressionTokenizer.make_list.__func__  # type: ignore[attr-defined]

    def counted(cls: Any, text: str) -> Any:
        seen.append(text)
        return original(cls, text)

    monkeypatch.setattr(ExpressionTokenizer, "make_list", classmethod(counted))
    return seen


def counter_update(
    settings: Settings, key: str, expression: str, values: dict[str, Any], condition: str = ""
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TableName": settings.limits_table,
        "Key": {schema.LIMITS_PK: {"S": key}},
        "UpdateExpression": expression,
        "ExpressionAttributeValues": values,
        "ReturnValues": "ALL_NEW",
    }
    if condition:
        request["ConditionExpression"] = condition
    return request


def test_an_expression_is_parsed_once_and_each_call_still_gets_its_own_values(
    settings: Settings, dynamo: Dynamo, tokenized: list[str]
) -> None:
    # GIVEN one update expression text (unique to this test), with a condition
    name = "n_" + uuid.uuid4().hex[:8]
    expression = f"ADD {name} :step SET touched = :at"
    condition = f"attribute_not_exists({name}) OR {name} < :cap"
    key = "k-" + uuid.uuid4().hex[:12]

    def update(step: int, at: str, cap: int) -> dict[str, Any]:
        values = {":step": {"N": str(step)}, ":at": {"S": at}, ":cap": {"N": str(cap)}}
        answer = dynamo.client.update_item(
            **counter_update(settings, key, expression, values, condition)
        )
        return from_item(answer["Attributes"])

    # WHEN it is sent three times with different values
    assert (update(5, "first", 100)[name], update(7, "second", 100)["touched"]) == (5, "second")
    # THEN each call applied its own values, and its own condition's values
    with pytest.raises(ClientError) as refused:
        update(1, "third", 12)  # 12 is not above 12
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert update(1, "fourth", 13) == {schema.LIMITS_PK: key, name: 13, "touched": "fourth"}
    # AND the text was tokenized once, not twice per call (moto parses an update twice)
    assert tokenized.count(expression) == 1


def test_expressions_moto_refuses_are_still_refused_every_time(
    settings: Settings, dynamo: Dynamo
) -> None:
    key = "k-" + uuid.uuid4().hex[:12]
    one = {":one": {"N": "1"}}
    for _ in range(2):  # a refused expression is not kept: the second call is judged again
        # two SET clauses (the check now made once, on the whole expression)
        with pytest.raises(ClientError) as two_sets:
            dynamo.client.update_item(
                **counter_update(settings, key, "SET a = :one SET b = :one", one)
            )
        assert two_sets.value.response["Error"]["Code"] == "ValidationException"
        # an update expression that does not parse
        with pytest.raises(ClientError) as garbled:
            dynamo.client.update_item(**counter_update(settings, key, "ADD a :one ==", one))
        assert garbled.value.response["Error"]["Code"] == "ValidationException"
    assert "Item" not in dynamo.client.get_item(
        TableName=settings.limits_table, Key={schema.LIMITS_PK: {"S": key}}
    )


def test_dynamodb_calls_go_straight_to_its_app(
    settings: Settings, dynamo: Dynamo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's dispatcher looks for the service on every call (listing its package folders);
    the embedded server finds DynamoDB's app once."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    dynamo.client.describe_table(TableName=settings.limits_table)  # found by now
    looked: list[str] = []
    original = DomainDispatcherApplication.get_application

    def counted(self: Any, environ: dict[str, Any]) -> Any:
        looked.append(str(environ.get("PATH_INFO")))
        return original(self, environ)

    monkeypatch.setattr(DomainDispatcherApplication, "get_application", counted)
    for _ in range(5):
        dynamo.client.get_item(
            TableName=settings.limits_table, Key={schema.LIMITS_PK: {"S": "absent"}}
        )
    assert looked == []


# -- the embedded server's own HTTP (local_env._WSGIHandler) -------------------------------------


def exchange(endpoint_url: str, raw: bytes) -> list[bytes]:
    """Send `raw` on one connection; the status lines of the answers, in order."""
    host, port = endpoint_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(raw)
        conn.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    return [line for line in received.split(b"\r\n") if line.startswith(b"HTTP/1.")]


def list_tables(extra: bytes = b"") -> bytes:
    body = b"{}"
    return (
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-amz-json-1.0\r\n"
        b"X-Amz-Target: DynamoDB_20120810.ListTables\r\n"
        + extra
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def test_the_embedded_server_keeps_connections_and_refuses_what_is_not_http(dynamodb) -> None:
    host, port = dynamodb.endpoint_url.removeprefix("http://").split(":")
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "DynamoDB_20120810.ListTables",
    }
    # Two calls on one connection: both answered on it (keep-alive, as DynamoDB serves botocore)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    statuses, sockets = [], []
    for _ in range(2):
        conn.request("POST", "/", body=b"{}", headers=headers)
        answer = conn.getresponse()
        answer.read()
        statuses.append(answer.status)
        sockets.append(conn.sock)
    conn.close()
    assert statuses == [200, 200] and sockets[0] is sockets[1]
    # `Connection: close` ends it after the answer
    assert exchange(dynamodb.endpoint_url, list_tables(b"Connection: close\r\n")) == [
        b"HTTP/1.1 200 OK"
    ]
    # A field without a colon, a request line that is not HTTP/1.x, too many fields: 400/431
    assert exchange(dynamodb.endpoint_url, list_tables(b"no colon here\r\n"))[0].startswith(
        b"HTTP/1.1 400"
    )
    assert exchange(dynamodb.endpoint_url, b"POST / HTTP/2.0\r\n\r\n")[0].startswith(
        b"HTTP/1.1 400"
    )
    # a repeated Content-Length (the two could disagree): 400, as a strict server answers
    assert exchange(dynamodb.endpoint_url, list_tables(b"Content-Length: 2\r\n"))[0].startswith(
        b"HTTP/1.1 400"
    )
    crowd = b"".join(b"X-Field-%d: 1\r\n" % n for n in range(101))
    assert exchange(dynamodb.endpoint_url, list_tables(crowd))[0].startswith(b"HTTP/1.1 431")
