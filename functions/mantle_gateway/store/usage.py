"""Reading a month of usage items: always a Query, never a scan.

"This key, this month" is a Query on the table's partition key (`<key_id>#<YYYY-MM>`); "all keys,
this month" is a Query on the `month-index`. Both page through the results.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mantle_gateway import schema
from mantle_gateway.store.dynamo import Dynamo, from_item


class UsageReader:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def month(self, month: str, key_id: str | None = None) -> Iterator[dict[str, Any]]:
        query: dict[str, Any] = {"TableName": self._table}
        if key_id is not None:
            query |= {
                "KeyConditionExpression": "#pk = :pk",
                "ExpressionAttributeNames": {"#pk": schema.USAGE_PK},
                "ExpressionAttributeValues": {":pk": {"S": f"{key_id}#{month}"}},
                "ConsistentRead": True,
            }
        else:
            query |= {
                "IndexName": schema.USAGE_MONTH_INDEX,
                "KeyConditionExpression": "#m = :m",
                "ExpressionAttributeNames": {"#m": schema.USAGE_MONTH_ATTR},
                "ExpressionAttributeValues": {":m": {"S": month}},
            }
        while True:
            page = self._page(query)
            for item in page.get("Items", []):
                yield from_item(item)
            start = page.get("LastEvaluatedKey")
            if not start:
                return
            query["ExclusiveStartKey"] = start

    def _page(self, query: dict[str, Any]) -> dict[str, Any]:
        return dict(self._dynamo.call(lambda c: c.query(**query)))
