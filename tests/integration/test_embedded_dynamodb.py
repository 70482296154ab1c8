"""The embedded DynamoDB's transactions: their cost no longer grows with the table, and a
cancelled transaction still leaves nothing behind (moto_fixes, docs/decisions/0008).

Costs are counted (stored items deep-copied per transaction), never timed."""

from __future__ import annotations

import http.client
import json
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
    the embedded server finds DynamoDB's app once, and calls its handler without Flask."""
    from flask import Flask
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    dynamo.client.describe_table(TableName=settings.limits_table)  # found by now
    looked: list[str] = []
    original = DomainDispatcherApplication.get_application
    flask_dispatch = Flask.full_dispatch_request

    def counted(self: Any, environ: dict[str, Any]) -> Any:
        looked.append(str(environ.get("PATH_INFO")))
        return original(self, environ)

    def through_flask(self: Any) -> Any:
        looked.append("flask")
        return flask_dispatch(self)

    monkeypatch.setattr(DomainDispatcherApplication, "get_application", counted)
    monkeypatch.setattr(Flask, "full_dispatch_request", through_flask)
    for _ in range(5):
        answer = dynamo.client.get_item(
            TableName=settings.limits_table, Key={schema.LIMITS_PK: {"S": "absent"}}
        )
        assert "Item" not in answer and answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert looked == []


def test_a_failure_inside_moto_is_answered_as_dynamodb_answers_its_own(
    settings: Settings,
) -> None:
    """moto raises ValueError on some condition texts; the caller gets DynamoDB's 500 in JSON
    (which its client retries, then reports), not a dropped connection or an HTML page."""
    body = json.dumps(
        {
            "TableName": settings.limits_table,
            "Key": {schema.LIMITS_PK: {"S": "k-" + uuid.uuid4().hex}},
            "UpdateExpression": "SET n = :v",
            "ConditionExpression": "attribute_not_exists(",
            "ExpressionAttributeValues": {":v": {"N": "1"}},
        }
    )
    host, port = str(settings.dynamodb_endpoint_url).removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request(
        "POST",
        "/",
        body,
        {
            "X-Amz-Target": "DynamoDB_20120810.UpdateItem",
            "Content-Type": "application/x-amz-json-1.0",
        },
    )
    answer = connection.getresponse()
    assert answer.status == 500
    assert answer.getheader("content-type") == "application/x-amz-json-1.0"
    assert json.loads(answer.read())["__type"].endswith("#InternalServerError")


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


# -- item results written as JSON (moto_fixes) -----------------------------------------------


def serialized_both_ways(operation: str, result: dict[str, Any]) -> tuple[Any, Any, bool]:
    """(moto's serializer's answer, the embedded server's answer, whether it took the shortcut)
    for one result of `operation`, each as (status, content type, parsed body)."""
    from moto.core.responses import ActionContext, ActionResult
    from moto.core.serialize import get_serializer_class
    from moto.core.utils import get_service_model
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    from mantle_gateway.cli import moto_fixes

    moto_fixes.apply()
    serializer = get_serializer_class("dynamodb", "json")
    serialized: list[bool] = []

    class Counted(serializer):  # type: ignore[misc, valid-type]
        def serialize(self, result: Any) -> Any:
            serialized.append(True)
            return super().serialize(result)

    model = get_service_model("dynamodb")
    operation_model = model.operation_model(operation)
    answer = DynamoResult(result)
    fast = answer.execute_result(ActionContext(model, operation_model, Counted, DynamoHandler()))
    took_shortcut = not serialized
    shaped = ActionResult.execute_result(
        answer, ActionContext(model, operation_model, serializer, DynamoHandler())
    )

    def read(status: int, headers: dict[str, str], body: str) -> Any:
        return status, headers["Content-Type"], json.loads(body)

    return read(*shaped), read(*fast), took_shortcut


ITEM = {
    "pk": {"S": "spend#k#2026-12"},
    "spent_usd": {"N": "1.2500000000"},
    "window": {"N": "202612031200"},
    "hold#abc": {"M": {"usd": {"N": "0.5"}, "tokens": {"N": "300"}, "at": {"S": "x"}}},
    "alerted": {"L": [{"N": "50"}, {"BOOL": True}, {"NULL": True}]},
    "models": {"SS": ["a", "b"]},
    "counts": {"NS": ["1", "2"]},
}


@pytest.mark.parametrize(
    ("operation", "result"),
    [
        ("UpdateItem", {"Attributes": ITEM}),
        (
            "UpdateItem",
            {"Attributes": ITEM, "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.0}},
        ),
        ("GetItem", {"Item": ITEM}),
        ("GetItem", {}),
        ("PutItem", {}),
        (
            "Query",
            {
                "Items": [ITEM, ITEM],
                "Count": 2,
                "ScannedCount": 2,
                "LastEvaluatedKey": {"pk": {"S": "x"}},
            },
        ),
        ("Scan", {"Items": [], "Count": 0, "ScannedCount": 0}),
    ],
)
def test_an_item_result_written_as_json_is_what_motos_serializer_writes(
    operation: str, result: dict[str, Any]
) -> None:
    shaped, fast, took_shortcut = serialized_both_ways(operation, result)
    assert took_shortcut
    assert fast == shaped


@pytest.mark.parametrize(
    ("operation", "result"),
    [
        ("GetItem", {"Item": {"pk": {"S": "k"}, "blob": {"B": b"\x00\xff"}}}),  # base64 to write
        ("Query", {"Items": [], "Count": 0, "Surplus": 1}),  # a member the shape does not name
        ("Query", {"Items": [], "Count": 0, "LastEvaluatedKey": None}),  # a null it omits
    ],
)
def test_a_result_that_needs_shaping_is_left_to_motos_serializer(
    operation: str, result: dict[str, Any]
) -> None:
    shaped, fast, took_shortcut = serialized_both_ways(operation, result)
    assert not took_shortcut
    assert fast == shaped


def test_a_transactions_condition_is_parsed_once_per_call_and_applied_with_its_values(
    settings: Settings, dynamo: Dynamo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser

    parsed: list[str] = []
    original = ConditionExpressionParser._parse_paths  # once per parse, after the tokens

    def counted(self: Any, nodes: Any) -> Any:
        parsed.append(str(self.condition_expression))
        return original(self, nodes)

    monkeypatch.setattr(ConditionExpressionParser, "_parse_paths", counted)
    # GIVEN a condition text unique to this test, on a counter item
    name = "c_" + uuid.uuid4().hex[:8]
    condition = f"attribute_not_exists({name}) OR {name} < :cap"
    key = "k-" + uuid.uuid4().hex[:12]

    def add(cap: int) -> None:
        update = counter_update(
            settings, key, f"ADD {name} :one", {":one": {"N": "1"}, ":cap": {"N": str(cap)}}
        )
        update.pop("ReturnValues")
        update["ConditionExpression"] = condition
        dynamo.client.transact_write_items(TransactItems=[{"Update": update}])

    # WHEN a transaction applies it, THEN moto parsed it once, not once to check and once to apply
    add(cap=1)
    assert parsed.count(condition) == 1
    # AND the same condition and values, kept, are decided against the item as it is now: the
    # counter is 1, which is not below 1
    with pytest.raises(ClientError) as refused:
        add(cap=1)
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert parsed.count(condition) == 1
    # AND other values are a new parse, applied with those values: 1 is below 2
    add(cap=2)
    assert parsed.count(condition) == 2
    answer = dynamo.client.get_item(
        TableName=settings.limits_table, Key={schema.LIMITS_PK: {"S": key}}, ConsistentRead=True
    )
    assert from_item(answer["Item"])[name] == 2
