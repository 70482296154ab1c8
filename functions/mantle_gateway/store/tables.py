"""Create the three tables where `AWS_ENDPOINT_URL_DYNAMODB` points (local and test use).

The layout mirrors what `infra/constructs/tables.py` deploys; both take their names from
`schema`. Creating is idempotent: a table that exists is left as it is.
"""

from __future__ import annotations

from typing import Any

from mantle_gateway import schema
from mantle_gateway.settings import Settings
from mantle_gateway.store.dynamo import Dynamo


def table_specs(settings: Settings) -> list[dict[str, Any]]:
    def s(name: str) -> dict[str, str]:
        return {"AttributeName": name, "AttributeType": "S"}

    def key(hash_: str, range_: str | None = None) -> list[dict[str, str]]:
        out = [{"AttributeName": hash_, "KeyType": "HASH"}]
        if range_:
            out.append({"AttributeName": range_, "KeyType": "RANGE"})
        return out

    every = {"BillingMode": "PAY_PER_REQUEST"}
    return [
        {
            "TableName": settings.keys_table,
            "AttributeDefinitions": [s(schema.KEYS_PK), s(schema.KEYS_ID_ATTR)],
            "KeySchema": key(schema.KEYS_PK),
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": schema.KEYS_ID_INDEX,
                    "KeySchema": key(schema.KEYS_ID_ATTR),
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            **every,
        },
        {
            "TableName": settings.usage_table,
            "AttributeDefinitions": [
                s(schema.USAGE_PK),
                s(schema.USAGE_SK),
                s(schema.USAGE_MONTH_ATTR),
            ],
            "KeySchema": key(schema.USAGE_PK, schema.USAGE_SK),
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": schema.USAGE_MONTH_INDEX,
                    "KeySchema": key(schema.USAGE_MONTH_ATTR, schema.USAGE_SK),
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            **every,
        },
        {
            "TableName": settings.limits_table,
            "AttributeDefinitions": [s(schema.LIMITS_PK)],
            "KeySchema": key(schema.LIMITS_PK),
            **every,
        },
    ]


def create_tables(dynamo: Dynamo, settings: Settings) -> list[str]:
    from botocore.exceptions import ClientError

    client = dynamo.client
    names = []
    for spec in table_specs(settings):
        names.append(spec["TableName"])
        try:
            client.create_table(**spec)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
    for table in names:
        client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1})
    client.update_time_to_live(
        TableName=settings.usage_table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": schema.USAGE_TTL_ATTR},
    )
    return names
