"""Key items, found by the SHA-256 digest of the secret; the secret itself is never stored.

The CLI finds a key by its id through the `key_id-index`; the request path only ever does one
strongly consistent GetItem by digest (and usually not even that: see `core/auth.py`'s cache).

Every write after creation changes only the attributes it means to (UpdateItem SET/REMOVE),
never the whole record it read: an update is conditional on the key still being active, and a
revoke only sets `status`, so an update that read the key before a revoke cannot bring it back.
Revoked is final.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from mantle_gateway import schema
from mantle_gateway.store.dynamo import ConditionFailed, Dynamo, from_item, to_attr, to_item

ACTIVE = "active"
REVOKED = "revoked"


def _money(value: Any) -> Decimal | None:
    return Decimal(value) if value is not None else None


def _count(value: Any) -> int | None:
    return int(value) if value is not None else None


def _globs(value: Any) -> tuple[str, ...]:
    return tuple(value or ("*",))


def _percents(value: Any) -> tuple[int, ...] | None:
    return None if value is None else tuple(int(v) for v in value)


def _read(reader: Callable[[Any], Any]) -> dict[str, Any]:
    """Field metadata: how a stored value becomes the field's value (default: as stored)."""
    return {"read": reader}


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One key. Each field is one attribute of the item, under the same name (the first two under
    the table's key names); a new attribute is one new line here, with a reader only when the
    stored value needs converting (numbers come back as Decimal or int, lists as lists)."""

    key_id: str
    digest: str = field(repr=False)
    name: str
    owner: str = ""
    status: str = ACTIVE
    created_at: str = ""
    expires_at: str | None = None
    """UTC date YYYY-MM-DD; the key stops working at 00:00 UTC that day."""
    monthly_budget_usd: Decimal | None = field(default=None, metadata=_read(_money))
    rpm: int | None = field(default=None, metadata=_read(_count))
    tpm: int | None = field(default=None, metadata=_read(_count))
    models: tuple[str, ...] = field(default=("*",), metadata=_read(_globs))
    project: str | None = None
    """The Mantle project (`proj_…` or `default`) every upstream request of the key names."""
    alert_at: tuple[int, ...] | None = field(default=None, metadata=_read(_percents))
    """Budget alert thresholds, percent of the monthly budget; None: the stage's, (): none."""
    hint: str = ""
    """The first characters of the secret, so a person can tell keys apart; not enough to use."""

    def to_item(self) -> dict[str, Any]:
        return to_item({_ATTRIBUTES[f.name]: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> KeyRecord:
        values = from_item(item)
        return cls(
            **{
                f.name: f.metadata.get("read", _same)(values[_ATTRIBUTES[f.name]])
                for f in fields(cls)
                if _ATTRIBUTES[f.name] in values
            }
        )

    def public(self) -> dict[str, Any]:
        """What the CLI shows: everything but the digest."""
        return {f.name: _shown(getattr(self, f.name)) for f in fields(self) if f.name != "digest"}


def _same(value: Any) -> Any:
    return value


def _shown(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


_ATTRIBUTES: dict[str, str] = {f.name: f.name for f in fields(KeyRecord)} | {
    "key_id": schema.KEYS_ID_ATTR,
    "digest": schema.KEYS_PK,
}
"""Field name → attribute name."""

UPDATABLE = frozenset(_ATTRIBUTES) - {"key_id", "digest", "status", "created_at", "hint"}
"""What `update` may change: not the key's identity, not its status (only `revoke` does)."""


class KeyWriteRefused(Exception):
    """A write met a key that no longer exists, or an update met a key that is not active; the
    message is one line for a person."""


class KeyStore:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def put_new(self, record: KeyRecord) -> None:
        self._dynamo.call(
            lambda c: c.put_item(
                TableName=self._table,
                Item=record.to_item(),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": schema.KEYS_PK},
            )
        )

    def get_by_digest(self, digest: str) -> KeyRecord | None:
        answer = self._dynamo.call(
            lambda c: c.get_item(
                TableName=self._table,
                Key={schema.KEYS_PK: {"S": digest}},
                ConsistentRead=True,
            )
        )
        item = answer.get("Item")
        return KeyRecord.from_item(item) if item else None

    def get_by_id(self, key_id: str) -> KeyRecord | None:
        answer = self._dynamo.call(
            lambda c: c.query(
                TableName=self._table,
                IndexName=schema.KEYS_ID_INDEX,
                KeyConditionExpression="#id = :id",
                ExpressionAttributeNames={"#id": schema.KEYS_ID_ATTR},
                ExpressionAttributeValues={":id": {"S": key_id}},
            )
        )
        items = answer.get("Items", [])
        return KeyRecord.from_item(items[0]) if items else None

    def list(self) -> list[KeyRecord]:
        """Admin listing (CLI only): a scan is fine for a table of keys."""
        records: list[KeyRecord] = []
        start: dict[str, Any] | None = None
        while True:
            page = self._scan_page(start)
            records.extend(KeyRecord.from_item(item) for item in page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                return sorted(records, key=lambda r: (r.created_at, r.key_id))

    def _scan_page(self, start: dict[str, Any] | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"TableName": self._table}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = self._dynamo.call(lambda c: c.scan(**kwargs))
        return dict(page)

    def update(self, record: KeyRecord, **changes: Any) -> KeyRecord:
        """Set these attributes (None removes one) while the key is active; returns the key as
        stored after the write. Raises KeyWriteRefused when the key is revoked or gone."""
        unknown = changes.keys() - UPDATABLE
        if unknown or not changes:
            raise ValueError(f"cannot update {sorted(unknown) or 'nothing'}")
        names = {f"#a{i}": _ATTRIBUTES[name] for i, name in enumerate(changes)}
        values = dict(zip(names, changes.values(), strict=True))
        sets = [f"{n} = :{n[1:]}" for n, v in values.items() if v is not None]
        removes = [n for n, v in values.items() if v is None]
        expression = " ".join(
            f"{verb} {', '.join(parts)}"
            for verb, parts in (("SET", sets), ("REMOVE", removes))
            if parts
        )
        attributes = {f":{n[1:]}": to_attr(v) for n, v in values.items() if v is not None}
        return self._write(
            record,
            expression,
            "attribute_exists(#pk) AND #status = :active",
            names | {"#status": "status"},
            attributes | {":active": {"S": ACTIVE}},
        )

    def revoke(self, record: KeyRecord) -> KeyRecord:
        """Mark the key revoked, whatever else changed since it was read; revoking twice is fine."""
        return self._write(
            record,
            "SET #status = :revoked",
            "attribute_exists(#pk)",
            {"#status": "status"},
            {":revoked": {"S": REVOKED}},
        )

    def _write(
        self,
        record: KeyRecord,
        expression: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> KeyRecord:
        try:
            answer = self._dynamo.call(
                lambda c: c.update_item(
                    TableName=self._table,
                    Key={schema.KEYS_PK: {"S": record.digest}},
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names | {"#pk": schema.KEYS_PK},
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
            )
        except ConditionFailed:
            current = self.get_by_digest(record.digest)
            if current is None:
                raise KeyWriteRefused(f"key {record.key_id} no longer exists") from None
            raise KeyWriteRefused(
                f"key {record.key_id} is {current.status}; a {current.status} key cannot be changed"
            ) from None
        return KeyRecord.from_item(answer["Attributes"])
