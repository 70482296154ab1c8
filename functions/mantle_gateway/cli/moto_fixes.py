"""Work-arounds for the moto defects the embedded DynamoDB meets (moto 5.2), applied once.

- Number arithmetic: moto prints sums with `str(Decimal)`, so 0.1 + -0.1 is stored as "0E-1",
  which its next ADD cannot parse. Real DynamoDB normalizes numbers; results are re-printed here
  in plain notation.
- TransactWriteItems' rollback: before running a transaction moto deep-copies every table it
  names (`DynamoDBBackend.transact_write_items`, "Create a backup in case any of the
  transactions fail") and puts the copies back if one action fails. Every usage write is such a
  transaction, so its cost grew with every usage item stored (docs/decisions/0008). Here only
  the items the transaction names are saved and, on failure, put back; moto still runs the
  transaction itself (conditions, cancellation reasons, the one-action-per-item rule).

moto is a development dependency: this module is imported only by `cli/local_env.py`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


def apply() -> None:
    """Install both work-arounds (idempotent)."""
    _plain_number_arithmetic()
    _item_scoped_transactions()


def _plain_number_arithmetic() -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    if getattr(DynamoType, "_mantle_plain_numbers", False):
        return
    add, sub = DynamoType.__add__, DynamoType.__sub__

    def plain(result: Any) -> Any:
        if result.is_number() and "E" in result.value.upper():
            result.value = format(Decimal(result.value), "f")
        return result

    DynamoType.__add__ = lambda self, other: plain(add(self, other))  # type: ignore[method-assign]
    DynamoType.__sub__ = lambda self, other: plain(sub(self, other))  # type: ignore[method-assign]
    DynamoType._mantle_plain_numbers = True  # type: ignore[attr-defined]


def _item_scoped_transactions() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    whole_tables = DynamoDBBackend.transact_write_items
    if getattr(whole_tables, "_mantle_item_scoped", False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _save_touched(self.tables, transact_items)
        if saved is None:  # an action names no item we can locate: keep moto's own backup
            return whole_tables(self, transact_items)
        tables = {id(s.table): s.table for s in saved}.values()
        shards = [(t.stream_shard, len(t.stream_shard.items)) for t in tables if t.stream_shard]
        for table in tables:
            # moto's backup of this table is then the table itself, and its "rollback" (putting
            # the backup back in place) changes nothing: the saved items below do the rollback.
            table.__dict__["__deepcopy__"] = _same_table(table)
        try:
            whole_tables(self, transact_items)
        except BaseException:
            for item in saved:
                item.restore()
            for shard, length in shards:
                del shard.items[length:]
            raise
        finally:
            for table in tables:
                table.__dict__.pop("__deepcopy__", None)

    transact_write_items._mantle_item_scoped = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _same_table(table: Any) -> Any:
    return lambda memo: table


@dataclass(slots=True)
class _SavedItem:
    """One item as it was before a transaction (or its absence), ready to be put back."""

    table: Any
    hash_key: Any
    range_key: Any
    item: Any
    """A deep copy of the stored item; None when there was none."""
    hash_existed: bool

    @classmethod
    def take(cls, table: Any, hash_key: Any, range_key: Any) -> _SavedItem:
        existed = hash_key in table.items
        if range_key is None:
            found = table.items.get(hash_key)
        else:
            found = table.items.get(hash_key, {}).get(range_key)
        return cls(table, hash_key, range_key, copy.deepcopy(found), existed)

    def restore(self) -> None:
        items = self.table.items
        if self.range_key is None:
            if self.item is None:
                items.pop(self.hash_key, None)
            else:
                items[self.hash_key] = self.item
            return
        if self.item is not None:
            items[self.hash_key][self.range_key] = self.item
            return
        bucket = items.get(self.hash_key)
        if bucket is not None:
            bucket.pop(self.range_key, None)
            if not bucket and not self.hash_existed:
                del items[self.hash_key]


def _save_touched(tables: dict[str, Any], actions: list[dict[str, Any]]) -> list[_SavedItem] | None:
    """The items `actions` may write, saved; None when one cannot be located (a malformed key,
    which moto may still act on). Actions on a missing table are skipped: moto writes nothing
    there, it cancels the transaction."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    saved: dict[tuple[str, Any, Any], _SavedItem] = {}
    for action in actions:
        try:
            kind, body = next(iter(action.items()))
            table = tables.get(body.get("TableName"))
            if table is None:
                continue
            attrs = body["Item"] if kind == "Put" else body["Key"]
            hash_key = DynamoType(attrs[table.hash_key_attr])
            range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
        except Exception:  # any malformed action: fall back to moto's own backup
            return None
        place = (table.name, hash_key, range_key)
        if place not in saved:  # the first sight is the state before the transaction
            saved[place] = _SavedItem.take(table, hash_key, range_key)
    return list(saved.values())
