"""Stored response id → the key that created it (and the upstream prefix that serves it).

Written when the id is first seen in an answer, before that part of the answer reaches the
client, so the owner can read the response back at once. Another key asking for the id gets the
same 404 as for an id that never existed: ownership is not even confirmed to strangers.
Mantle keeps stored responses 30 days; the owner record expires a day after that (TTL).

A background response (`background: true`) is answered "queued" before any token is spent, so
its owner record also carries what billing it needs (`pending`, with the hold that carries its
budget reservation); the owner's first read that finds it finished bills it, once (see
`core/pipeline.py`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

from mantle_gateway import schema
from mantle_gateway.store.dynamo import Dynamo, from_item, to_item

_RETENTION_SECONDS = 31 * 24 * 3600


@dataclass(frozen=True, slots=True)
class PendingBill:
    """A background response not billed yet: what billing it later needs."""

    model: str
    started: float
    door: str
    reserved: Decimal
    hold: str | None = None
    """The request id whose hold carries `reserved` (None: a record written before holds)."""
    input_estimate: int = 1
    """Input tokens to bill if the finished response reports no usable usage (body bytes / 4)."""


@dataclass(frozen=True, slots=True)
class ResponseOwner:
    key_id: str
    prefix: str
    pending: PendingBill | None = None


class ResponseOwners:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def put(self, response_id: str, owner: ResponseOwner) -> None:
        pending = owner.pending
        item = to_item(
            {
                schema.USAGE_PK: schema.RESPONSE_OWNER_PREFIX + response_id,
                schema.USAGE_SK: schema.RESPONSE_OWNER_SK,
                "key_id": owner.key_id,
                "prefix": owner.prefix,
                "pending": None
                if pending is None
                else {
                    "model": pending.model,
                    "started": Decimal(repr(pending.started)),
                    "door": pending.door,
                    "reserved": pending.reserved,
                    "hold": pending.hold,
                    "input_estimate": pending.input_estimate,
                },
                schema.USAGE_TTL_ATTR: int(time.time()) + _RETENTION_SECONDS,
            }
        )
        self._dynamo.call(lambda c: c.put_item(TableName=self._table, Item=item))

    def settle(self, response_id: str) -> None:
        """The background response was billed: forget what billing it needed."""
        self._dynamo.call(
            lambda c: c.update_item(
                TableName=self._table,
                Key={
                    schema.USAGE_PK: {"S": schema.RESPONSE_OWNER_PREFIX + response_id},
                    schema.USAGE_SK: {"S": schema.RESPONSE_OWNER_SK},
                },
                UpdateExpression="REMOVE pending",
            )
        )

    def get(self, response_id: str) -> ResponseOwner | None:
        answer = self._dynamo.call(
            lambda c: c.get_item(
                TableName=self._table,
                Key={
                    schema.USAGE_PK: {"S": schema.RESPONSE_OWNER_PREFIX + response_id},
                    schema.USAGE_SK: {"S": schema.RESPONSE_OWNER_SK},
                },
                ConsistentRead=True,
            )
        )
        item = answer.get("Item")
        if not item:
            return None
        values = from_item(item)
        pending = values.get("pending")
        return ResponseOwner(
            values["key_id"],
            values.get("prefix", "/v1"),
            PendingBill(
                model=str(pending["model"]),
                started=float(pending["started"]),
                door=str(pending["door"]),
                reserved=Decimal(pending["reserved"]),
                hold=str(pending["hold"]) if pending.get("hold") is not None else None,
                input_estimate=int(pending.get("input_estimate", 1)),
            )
            if isinstance(pending, dict)
            else None,
        )
