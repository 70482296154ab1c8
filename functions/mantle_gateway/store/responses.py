"""Stored response id → the key that created it (and the upstream prefix that serves it).

Written when the id is first seen in an answer, before that part of the answer reaches the
client, so the owner can read the response back at once. Another key asking for the id gets the
same 404 as for an id that never existed: ownership is not even confirmed to strangers.
Mantle keeps stored responses 30 days; the owner record expires a day after that (TTL).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mantle_gateway import schema
from mantle_gateway.store.dynamo import Dynamo, from_item, to_item

_RETENTION_SECONDS = 31 * 24 * 3600


@dataclass(frozen=True, slots=True)
class ResponseOwner:
    key_id: str
    prefix: str


class ResponseOwners:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def put(self, response_id: str, owner: ResponseOwner) -> None:
        item = to_item(
            {
                schema.USAGE_PK: schema.RESPONSE_OWNER_PREFIX + response_id,
                schema.USAGE_SK: schema.RESPONSE_OWNER_SK,
                "key_id": owner.key_id,
                "prefix": owner.prefix,
                schema.USAGE_TTL_ATTR: int(time.time()) + _RETENTION_SECONDS,
            }
        )
        self._dynamo.call(lambda c: c.put_item(TableName=self._table, Item=item))

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
        return ResponseOwner(values["key_id"], values.get("prefix", "/v1"))
