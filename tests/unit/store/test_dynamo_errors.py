"""`Dynamo.call` is where DynamoDB's errors become the store's two errors, and where a write that
met a ledger transaction on the same item is retried instead of failing the request."""

from __future__ import annotations

from typing import Any

import pytest

from mantle_gateway.store import dynamo as dynamo_module
from mantle_gateway.store.dynamo import ConditionFailed, Dynamo, StoreError
from mantle_gateway.store.wire import WireError


def client_error(code: str, **extra: Any) -> WireError:
    """The error `store.wire` raises for DynamoDB's answer `code` (with its other fields)."""
    return WireError(code, code, {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", **extra})


def failing(*errors: Exception) -> tuple[list[int], Any]:
    """An operation that raises the given errors in turn, then answers {"ok": True}."""
    calls = [0]

    def operation(_client: Any) -> dict[str, bool]:
        calls[0] += 1
        if calls[0] <= len(errors):
            raise errors[calls[0] - 1]
        return {"ok": True}

    return calls, operation


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Dynamo:
    monkeypatch.setattr(dynamo_module.time, "sleep", lambda _seconds: None)
    dynamo = Dynamo(region="us-east-1", endpoint_url="http://127.0.0.1:1")
    dynamo._wire = object()  # type: ignore[assignment]  # never used by the fake operations
    return dynamo


def test_transaction_conflicts_are_retried_then_succeed(store: Dynamo) -> None:
    conflict = client_error("TransactionConflictException")
    calls, operation = failing(conflict, conflict)
    assert store.call(operation) == {"ok": True}
    assert calls[0] == 3


def test_a_third_conflict_is_a_store_error(store: Dynamo) -> None:
    conflict = client_error("TransactionConflictException")
    calls, operation = failing(conflict, conflict, conflict)
    with pytest.raises(StoreError, match="TransactionConflict"):
        store.call(operation)
    assert calls[0] == 3


def test_conditions_and_other_failures_are_not_retried(store: Dynamo) -> None:
    calls, operation = failing(client_error("ConditionalCheckFailedException"))
    with pytest.raises(ConditionFailed):
        store.call(operation)
    assert calls[0] == 1

    calls, operation = failing(WireError("RequestOutcomeUnknown", "the answer was lost"))
    with pytest.raises(StoreError):
        store.call(operation)
    assert calls[0] == 1


def test_a_transaction_cancelled_only_by_its_condition_is_a_condition(store: Dynamo) -> None:
    reasons = [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}]
    _, operation = failing(
        client_error("TransactionCanceledException", CancellationReasons=reasons)
    )
    with pytest.raises(ConditionFailed):
        store.call(operation)

    reasons = [{"Code": "None"}, {"Code": "TransactionConflict"}]
    _, operation = failing(
        client_error("TransactionCanceledException", CancellationReasons=reasons)
    )
    with pytest.raises(StoreError):
        store.call(operation)


def test_a_cancelled_transaction_says_which_action_failed_and_what_it_found(
    store: Dynamo,
) -> None:
    """The ledger tells "usage item already written" (the put) apart from "the reservation is not
    as expected" (the spend update), and reshapes the update from the item it found."""
    found = {"pk": {"S": "spend#k#2026-11"}, "window": {"N": "202611241201"}}
    reasons = [{"Code": "None"}, {"Code": "ConditionalCheckFailed", "Item": found}]
    _, operation = failing(
        client_error("TransactionCanceledException", CancellationReasons=reasons)
    )
    with pytest.raises(ConditionFailed) as info:
        store.call(operation)
    assert info.value.failed == (False, True)
    assert info.value.items == (None, {"pk": "spend#k#2026-11", "window": 202611241201})

    _, operation = failing(client_error("ConditionalCheckFailedException", Item=found))
    with pytest.raises(ConditionFailed) as single:
        store.call(operation)
    assert single.value.failed == (True,)
    assert single.value.items[0] == {"pk": "spend#k#2026-11", "window": 202611241201}
