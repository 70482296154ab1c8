"""The embedded DynamoDB's tables as plain JSON, and back: what `serve --data-dir` keeps.

moto keeps its tables in process memory (`moto.dynamodb.models.dynamodb_backends`, one backend
per account and region). A snapshot lists every table there with its definition (key schema,
attribute types, indexes, TTL) and its items in DynamoDB's own JSON (`{"S": "…"}`), so it
reads the same whatever moto version wrote it and can be inspected with `jq`. Restoring creates
each missing table and puts the items back as moto stores them.

Only `local_env.EmbeddedDynamoDB` calls this, holding its write lock, so a snapshot is one
consistent moment of every table.
"""

from __future__ import annotations

import base64
from typing import Any

FORMAT = "mantle-gateway embedded DynamoDB snapshot"
VERSION = 1


class SnapshotError(ValueError):
    """The snapshot cannot be restored; the message says why, in a few words."""


def export_tables() -> dict[str, Any]:
    from moto.dynamodb.models import dynamodb_backends

    tables = []
    for account_id, regions in dict.items(dynamodb_backends):
        for region, backend in dict.items(regions):
            for table in backend.tables.values():
                tables.append(_table(account_id, region, table))
    return {"format": FORMAT, "version": VERSION, "tables": tables}


def _table(account_id: str, region: str, table: Any) -> dict[str, Any]:
    items = []
    for stored in table.items.values():
        for item in stored.values() if table.range_key_attr else (stored,):
            items.append({name: _plain(value) for name, value in item.attrs.items()})
    return {
        "account": account_id,
        "region": region,
        "name": table.name,
        "key_schema": table.schema,
        "attributes": table.attr,
        "global_indexes": [_index(i) for i in table.global_indexes],
        "local_indexes": [_index(i) for i in table.indexes],
        "ttl": table.ttl,
        "items": items,
    }


def _index(index: Any) -> dict[str, Any]:
    return {"IndexName": index.name, "KeySchema": index.schema, "Projection": index.projection}


def _plain(value: Any) -> Any:
    """One attribute value in DynamoDB JSON; binary as base64, as on the wire."""
    regular = value.to_regular_json()
    if isinstance(regular.get("B"), bytes):
        return {"B": base64.b64encode(regular["B"]).decode("ascii")}
    return regular


def import_tables(snapshot: Any) -> int:
    """Create the snapshot's tables (unless they exist) and put its items; the item count.

    Raises SnapshotError for anything that is not a snapshot this code wrote."""
    from moto.dynamodb.models import dynamodb_backends

    if not isinstance(snapshot, dict) or snapshot.get("format") != FORMAT:
        raise SnapshotError("not a Mantle Gateway data snapshot")
    if snapshot.get("version") != VERSION:
        raise SnapshotError(f"snapshot version {snapshot.get('version')!r}, expected {VERSION}")
    count = 0
    try:
        for spec in snapshot["tables"]:
            backend = dynamodb_backends[str(spec["account"])][str(spec["region"])]
            table = backend.tables.get(spec["name"]) or _create(backend, spec)
            for attrs in spec["items"]:
                _put(table, attrs)
                count += 1
    except SnapshotError:
        raise
    except Exception as exc:  # moto's own errors, KeyError, TypeError: not our snapshot's shape
        raise SnapshotError(f"unexpected content ({type(exc).__name__}: {exc})") from exc
    return count


_TYPES = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "BOOL", "NULL"})


def _put(table: Any, attrs: dict[str, Any]) -> None:
    """Put one item back as moto stores it. Not through `Table.put_item`: that re-checks the
    item's size on every attribute it adds (quadratic; ~0.3 ms an item), and these items passed
    every check when they were first written."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    values = {name: DynamoType(value) for name, value in attrs.items()}
    if any(v.type not in _TYPES for v in values.values()):
        raise SnapshotError("an item holds a value that is not DynamoDB JSON")
    hash_key = DynamoType(attrs[table.hash_key_attr])
    range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
    if hash_key.type != table.hash_key_type or (
        range_key is not None and range_key.type != table.range_key_type
    ):
        raise SnapshotError(f"an item's key does not match table {table.name}'s key types")
    item = Item(hash_key, range_key, {})
    dict.update(item.attrs, values)
    if range_key is None:
        table.items[hash_key] = item
    else:
        table.items[hash_key][range_key] = item


def _create(backend: Any, spec: dict[str, Any]) -> Any:
    table = backend.create_table(
        spec["name"],
        schema=spec["key_schema"],
        throughput=None,
        attr=spec["attributes"],
        global_indexes=spec["global_indexes"],
        indexes=spec["local_indexes"],
        streams=None,
        billing_mode="PAY_PER_REQUEST",
        sse_specification=None,
        tags=[],
        deletion_protection_enabled=False,
        warm_throughput=None,
    )
    ttl = spec.get("ttl") or {}
    if ttl.get("TimeToLiveStatus") == "ENABLED":
        backend.update_time_to_live(
            spec["name"], {"Enabled": True, "AttributeName": ttl["AttributeName"]}
        )
    return table
