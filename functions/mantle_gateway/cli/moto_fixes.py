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

- Work redone on every call, which made moto the slowest process of `serve` (about 11 ms of
  CPU per gateway request, for its two DynamoDB calls): an update expression is parsed twice
  per UpdateItem, the same condition expression is tokenized again on every call, the check
  that an update has at most one clause of each kind walks the whole expression again from
  every node (quadratic in its length), each tree walk rebuilds its table of node types at every
  node, and the handler's method names are listed by `inspect` per call. Each result that
  depends only on the expression's text (or the class) is kept and reused; values, names and
  items are still applied on every call, exactly as moto does (docs/decisions/0008).
- A transaction's conditions parsed twice: its handler parses each to validate it, then the
  backend parses it again to apply it. A parse is kept for the same text, names and values.
- Item results serialized field by field: moto walks every result against the operation's
  output shape, though an item operation's result already is DynamoDB's JSON. Such a result is
  written with `json.dumps` when nothing in it needs shaping (docs/decisions/0008).

moto is a development dependency: this module is imported only by `cli/local_env.py`.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import pickle
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


def apply() -> None:
    """Install every work-around (idempotent)."""
    _plain_number_arithmetic()
    _item_scoped_transactions()
    _parsed_expressions_kept()
    _action_counts_checked_once()
    _node_types_kept()
    _method_names_kept()
    _item_results_written_plainly()
    _conditions_parsed_once_per_call()


def _moto(module: str) -> Any:
    """A moto module whose parts have no types for mypy (its expression parsers)."""
    return importlib.import_module("moto." + module)


_KEPT = 512
"""Distinct expressions kept per cache: the gateway sends a few dozen shapes."""


def _parsed_expressions_kept() -> None:
    """An update expression's tree, and a condition expression's tokens, by their text.

    The tree is only read (`find_clauses`) or deep-copied before it is changed (moto's
    `Validator` copies it and resolves names and values in the copy), so one tree serves every
    call with the same text, and its copies are unpickled from bytes kept beside it; the tokens
    are immutable tuples, handed out in a fresh deque that the parser may consume. Expressions
    that do not parse are not kept: each call raises."""
    from moto.dynamodb.comparisons import ConditionExpressionParser

    UpdateExpressionParser = _moto("dynamodb.parsing.expressions").UpdateExpressionParser
    if getattr(UpdateExpressionParser, "_mantle_kept", False):
        return
    make = UpdateExpressionParser.make.__func__
    validators = _moto("dynamodb.parsing.validators")
    deep = validators.deepcopy
    pickled: dict[int, tuple[Any, bytes]] = {}
    """id(kept tree) → (the tree, its pickle): a tree's copy for moto's validator is made by
    unpickling (~8 times faster than `deepcopy`, the same independent copy: the nodes are plain
    objects with no copy hooks of their own)."""

    @functools.lru_cache(maxsize=_KEPT)
    def parsed(text: str) -> Any:
        tree = make(UpdateExpressionParser, text)
        if len(pickled) >= _KEPT:
            pickled.clear()
        pickled[id(tree)] = (tree, pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL))
        return tree

    def copy_tree(value: Any, memo: Any = None) -> Any:
        kept = pickled.get(id(value))
        if kept is not None and kept[0] is value:
            return pickle.loads(kept[1])  # noqa: S301  # bytes this process pickled
        return deep(value, memo)

    UpdateExpressionParser.make = classmethod(
        lambda cls, text: parsed(text) if cls is UpdateExpressionParser else make(cls, text)
    )
    validators.deepcopy = copy_tree
    lex = ConditionExpressionParser._lex_condition_expression
    tokens: dict[str | None, tuple[Any, ...]] = {}

    def lex_kept(self: Any) -> deque[Any]:
        text = self.condition_expression
        kept = tokens.get(text)
        if kept is None:
            kept = tuple(lex(self))
            if len(tokens) < _KEPT:
                tokens[text] = kept
        return deque(kept)

    ConditionExpressionParser._lex_condition_expression = lex_kept  # type: ignore[method-assign]
    UpdateExpressionParser._mantle_kept = True


def _action_counts_checked_once() -> None:
    """ "At most one SET, REMOVE and ADD clause", checked on the whole expression only.

    moto checks it at every UpdateExpression node of the tree, each check walking that node's
    subtree: every subtree's clauses are the root's too, so the root's check alone refuses the
    same expressions (when an expression breaks two of the rules, the message may name the
    other clause)."""
    UpdateExpression = _moto("dynamodb.parsing.ast_nodes").UpdateExpression
    ActionCountValidator = _moto("dynamodb.parsing.validators").ActionCountValidator

    if getattr(ActionCountValidator, "_mantle_once", False):
        return
    walk = ActionCountValidator.traverse

    def traverse(self: Any, node: Any) -> Any:
        if isinstance(node, UpdateExpression):
            return self.verify_action_counts(node)
        return walk(self, node)

    ActionCountValidator.traverse = traverse
    ActionCountValidator._mantle_once = True


def _node_types_kept() -> None:
    """A tree walker's node types, computed once per walker instead of at every node."""
    DepthFirstTraverser = _moto("dynamodb.parsing.ast_nodes").DepthFirstTraverser

    types = DepthFirstTraverser.nodes_to_be_processed
    if getattr(types, "_mantle_kept", False):
        return

    def kept(self: Any) -> tuple[type, ...]:
        found: tuple[type, ...] | None = self.__dict__.get("_mantle_types")
        if found is None:
            found = self.__dict__["_mantle_types"] = types(self)
        return found

    kept._mantle_kept = True  # type: ignore[attr-defined]
    DepthFirstTraverser.nodes_to_be_processed = kept


def _method_names_kept() -> None:
    """A response class's method names (moto lists them with `inspect` on every call)."""
    responses = _moto("core.responses")
    names = responses.method_names_from_class
    if getattr(names, "_mantle_kept", False):
        return
    kept = functools.lru_cache(maxsize=None)(lambda clazz: frozenset(names(clazz)))
    kept._mantle_kept = True  # type: ignore[attr-defined]
    responses.method_names_from_class = kept


def _conditions_parsed_once_per_call() -> None:
    """A condition's parse, by its text, names and values: moto's TransactWriteItems handler
    parses each action's condition to validate it and its backend parses it again to apply it
    (a third of moto's condition parsing per gateway request). The parse result is only read
    when applied; the names and values it found are given to each parser that asks, as its own
    parse would have. A condition moto refuses is parsed, and refused, every time."""
    comparisons = _moto("dynamodb.comparisons")
    parser_class = comparisons.ConditionExpressionParser
    if getattr(parser_class, "_mantle_kept", False):
        return
    parse = parser_class.parse

    @functools.lru_cache(maxsize=_KEPT)
    def parsed(text: str | None, names: str, values: str) -> tuple[Any, list[str], list[str]]:
        parser = parser_class(text, json.loads(names), json.loads(values))
        return parse(parser), parser.expr_attr_names_found, parser.expr_attr_values_found

    def kept(self: Any) -> Any:
        try:
            key = (  # none given and none in an empty map are the same (handler vs backend)
                json.dumps(self.expression_attribute_names or {}, sort_keys=True),
                json.dumps(self.expression_attribute_values or {}, sort_keys=True),
            )
        except TypeError:  # not JSON: moto's own parse decides
            return parse(self)
        op, names_found, values_found = parsed(self.condition_expression, *key)
        self.expr_attr_names_found.extend(names_found)
        self.expr_attr_values_found.extend(values_found)
        return op

    parser_class.parse = kept
    parser_class._mantle_kept = True


_ITEM_OPERATIONS = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"})


def _item_results_written_plainly() -> None:
    """An item operation's result as `json.dumps` writes it, instead of moto's serializer, which
    walks it against the output shape (15% of moto's CPU per gateway request, most of it the
    month item the admission returns). Its result is AttributeValue maps, counts and capacity:
    already the wire JSON. What the serializer would shape differently is left to it: binary
    values and timestamps (which moto keeps as bytes and datetimes, so `json.dumps` refuses
    them), members the output shape does not name (it drops them) and nulls (it omits them)."""
    responses = _moto("dynamodb.responses")
    result_class = responses.DynamoResult
    if getattr(result_class, "_mantle_plain", False):
        return
    shaped = result_class.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        operation = context.operation_model
        result = self.result
        output = operation.output_shape
        if (
            operation.name in _ITEM_OPERATIONS
            and isinstance(result, dict)
            and output is not None
            and result.keys() <= output.members.keys()
            and None not in result.values()
        ):
            try:
                body = json.dumps(result)
            except TypeError:  # bytes or a datetime: the serializer's to shape
                pass
            else:
                return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return shaped(self, context)

    result_class.execute_result = execute_result
    result_class._mantle_plain = True


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
