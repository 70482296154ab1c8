"""Key items, found by the SHA-256 digest of the secret; the secret itself is never stored.

The CLI finds a key by its id through the `key_id-index`; the request path only ever does one
strongly consistent GetItem by digest (and usually not even that: see `core/auth.py`'s cache).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from mantle_gateway import schema
from mantle_gateway.store.dynamo import Dynamo, from_item, to_item


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    digest: str = field(repr=False)
    name: str
    owner: str = ""
    status: str = "active"
    created_at: str = ""
    expires_at: str | None = None
    """UTC date YYYY-MM-DD; the key stops working at 00:00 UTC that day."""
    monthly_budget_usd: Decimal | None = None
    rpm: int | None = None
    tpm: int | None = None
    models: tuple[str, ...] = ("*",)
    hint: str = ""
    """The first characters of the secret, so a person can tell keys apart; not enough to use."""

    def to_item(self) -> dict[str, Any]:
        return to_item(
            {
                schema.KEYS_PK: self.digest,
                schema.KEYS_ID_ATTR: self.key_id,
                "name": self.name,
                "owner": self.owner or None,
                "status": self.status,
                "created_at": self.created_at,
                "expires_at": self.expires_at,
                "monthly_budget_usd": self.monthly_budget_usd,
                "rpm": self.rpm,
                "tpm": self.tpm,
                "models": list(self.models),
                "hint": self.hint,
            }
        )

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> KeyRecord:
        values = from_item(item)
        budget = values.get("monthly_budget_usd")
        return cls(
            key_id=values[schema.KEYS_ID_ATTR],
            digest=values[schema.KEYS_PK],
            name=values.get("name", ""),
            owner=values.get("owner", ""),
            status=values.get("status", "active"),
            created_at=values.get("created_at", ""),
            expires_at=values.get("expires_at"),
            monthly_budget_usd=Decimal(budget) if budget is not None else None,
            rpm=_int(values.get("rpm")),
            tpm=_int(values.get("tpm")),
            models=tuple(values.get("models") or ("*",)),
            hint=values.get("hint", ""),
        )

    def public(self) -> dict[str, Any]:
        """What the CLI shows: everything but the digest."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "owner": self.owner,
            "status": self.status,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "monthly_budget_usd": str(self.monthly_budget_usd)
            if self.monthly_budget_usd is not None
            else None,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "models": list(self.models),
            "hint": self.hint,
        }


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


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

    def replace(self, record: KeyRecord, **changes: Any) -> KeyRecord:
        updated = replace(record, **changes)
        self._dynamo.call(
            lambda c: c.put_item(
                TableName=self._table,
                Item=updated.to_item(),
                ConditionExpression="attribute_exists(#pk)",
                ExpressionAttributeNames={"#pk": schema.KEYS_PK},
            )
        )
        return updated
