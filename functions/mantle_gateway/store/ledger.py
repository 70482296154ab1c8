"""Usage item and spend in one DynamoDB transaction: the ledger finance can trust.

One TransactWriteItems puts the usage item (only if it does not exist: writing the same request
twice is a no-op, which makes replay idempotent) and adds its cost to the key's month spend
counter (and, for a key with a tokens-per-minute limit, its tokens to the rate window in that
same month item). So for every key and month the sum of the
usage items equals the spend counter exactly. A refused write is retried with backoff; if it
still fails the whole item goes to one structured log line (`usage_write_failed`) that
`mantle-gateway usage replay` can write back later. Usage is never silently lost.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from mantle_gateway import schema
from mantle_gateway.observability import logger, metric
from mantle_gateway.store.dynamo import ConditionFailed, Dynamo, StoreError, number, to_item
from mantle_gateway.store.limits import spend_pk
from mantle_gateway.usage import UsageRecord

FAILED_WRITE_MESSAGE = "usage_write_failed"
WRITTEN, ALREADY_PRESENT, FAILED = "written", "already_present", "failed"
_ZERO = Decimal(0)


class Ledger:
    def __init__(
        self,
        dynamo: Dynamo,
        *,
        usage_table: str,
        limits_table: str,
        attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._dynamo = dynamo
        self._usage_table = usage_table
        self._limits_table = limits_table
        self._attempts = attempts
        self._sleep = sleep

    def record(
        self,
        record: UsageRecord,
        reserved: Decimal = _ZERO,
        *,
        charge_window: bool = False,
    ) -> bool:
        """Write the item and the spend; True when written now or before, False when logged."""
        tokens = record.tokens.total if charge_window else 0
        outcome = self.write_item(record.item(), tokens=tokens, reserved=reserved)
        return outcome != FAILED

    def log_unwritten(
        self,
        record: UsageRecord,
        reserved: Decimal = _ZERO,
        *,
        charge_window: bool = False,
        error: str,
    ) -> None:
        """Keep a record that will not be written now as `record()` keeps one DynamoDB refused:
        one line `usage replay` writes back (the local door's writer, at shutdown). The rate
        window is not replayed: it is long gone by then."""
        _log_failed_write(record.item(), reserved, error)

    def write_item(
        self,
        item: Mapping[str, Any],
        *,
        tokens: int = 0,
        reserved: Decimal = _ZERO,
    ) -> str:
        """WRITTEN, ALREADY_PRESENT (same request written before) or FAILED (logged for replay).
        `tokens` are charged to the key's current rate window (0: the key has no tpm limit)."""
        actions = self._actions(item, tokens, reserved)
        delay = 0.05
        for attempt in range(1, self._attempts + 1):
            try:
                self._dynamo.call(lambda c: c.transact_write_items(TransactItems=actions))  # type: ignore[arg-type]
                return WRITTEN
            except ConditionFailed:
                return ALREADY_PRESENT
            except StoreError as exc:
                if attempt == self._attempts:
                    _log_failed_write(item, reserved, str(exc))
                    return FAILED
                self._sleep(delay + random.uniform(0, delay))
                delay *= 2
        return FAILED

    def _actions(
        self, item: Mapping[str, Any], tokens: int, reserved: Decimal
    ) -> list[dict[str, Any]]:
        cost = Decimal(str(item["cost_usd"]))
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._usage_table,
                    "Item": to_item(item),
                    "ConditionExpression": "attribute_not_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": schema.USAGE_PK},
                }
            },
            {
                "Update": {
                    "TableName": self._limits_table,
                    "Key": {
                        schema.LIMITS_PK: {"S": spend_pk(str(item["key_id"]), str(item["month"]))}
                    },
                    "UpdateExpression": "ADD spent_usd :cost, committed_usd :settle, requests :one"
                    + (", window_tokens :tokens" if tokens else ""),
                    "ExpressionAttributeValues": {
                        ":cost": {"N": number(cost)},
                        ":settle": {"N": number(cost - reserved)},
                        ":one": {"N": "1"},
                    }
                    | ({":tokens": {"N": str(tokens)}} if tokens else {}),
                }
            },
        ]
        return actions


def _log_failed_write(item: Mapping[str, Any], reserved: Decimal, error: str) -> None:
    """The one line that keeps an unwritten usage item: `usage replay` writes it back."""
    logger.error(
        FAILED_WRITE_MESSAGE,
        extra={"usage_item": json_safe(item), "reserved_usd": str(reserved), "error": error},
    )
    metric("UsageWriteFailures")


def json_safe(item: Mapping[str, Any]) -> dict[str, Any]:
    """Decimals as strings so the logged item round-trips exactly (json floats would not)."""
    safe: dict[str, Any] = json.loads(json.dumps(dict(item), default=str))
    return safe
