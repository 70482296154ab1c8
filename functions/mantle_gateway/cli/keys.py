"""`mantle-gateway keys create|list|show|revoke|update`: the secret is printed once, at creation."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from mantle_gateway.errors import ConfigError
from mantle_gateway.settings import Settings
from mantle_gateway.store.keys import KeyRecord, KeyStore, KeyWriteRefused


def _store() -> KeyStore:
    from mantle_gateway.store.dynamo import Dynamo

    settings = Settings.load()
    dynamo = Dynamo(region=settings.region, endpoint_url=settings.dynamodb_endpoint_url)
    return KeyStore(dynamo, settings.keys_table)


def run(args: argparse.Namespace) -> int:
    store = _store()
    if args.command == "create":
        return _create(store, args)
    if args.command == "list":
        records = store.list()
        if args.json:
            print(json.dumps([r.public() for r in records]))
        else:
            for r in records:
                print(f"{r.key_id}  {r.status:8}  {r.hint:12}  {r.name}")
        return 0
    record = store.get_by_id(args.key_id)
    if record is None:
        print(f"mantle-gateway: no key with id {args.key_id}", file=sys.stderr)
        return 1
    try:
        if args.command == "revoke":
            record = store.revoke(record)
        elif args.command == "update":
            record = store.update(record, **_update_changes(args))
    except KeyWriteRefused as exc:
        print(f"mantle-gateway: {exc}", file=sys.stderr)
        return 1
    _show(record, as_json=args.json)
    return 0


def _update_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes = _changes(args)
    if args.name:
        changes["name"] = args.name
    if not changes:
        raise ConfigError("keys update: nothing to change (give --rpm, --tpm, --models, …)")
    return changes


def _create(store: KeyStore, args: argparse.Namespace) -> int:
    from mantle_gateway.core.auth import issue_key

    secret, record = issue_key(store, name=args.name, now=datetime.now(UTC), **_changes(args))
    if args.json:
        print(json.dumps({"key": secret, "key_id": record.key_id}))
    else:
        print(f"key_id: {record.key_id}")
        print(f"key:    {secret}")
        print("Store the key now: it is shown only this once.")
    return 0


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if args.owner is not None:
        changes["owner"] = args.owner
    if args.budget is not None:
        changes["monthly_budget_usd"] = _budget(args.budget)
    if args.rpm is not None:
        changes["rpm"] = _positive(args.rpm, "--rpm")
    if args.tpm is not None:
        changes["tpm"] = _positive(args.tpm, "--tpm")
    if args.models is not None:
        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
        if not models:
            raise ConfigError("--models: give at least one model glob")
        changes["models"] = models
    if args.expires is not None:
        changes["expires_at"] = _date(args.expires)
    if args.project is not None:
        changes["project"] = _project(args.project)
    if args.alert_at is not None:
        changes["alert_at"] = _alert_at(args.alert_at)
    return changes


def _budget(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"--monthly-budget-usd: {raw!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"--monthly-budget-usd: {raw!r} must be zero or more")
    return value


def _positive(value: int, flag: str) -> int:
    if value <= 0:
        raise ConfigError(f"{flag}: must be a positive whole number")
    return value


def _project(raw: str) -> str | None:
    """A Mantle project id, or None for `none` (on update: the key no longer names one)."""
    from mantle_gateway.core.projects import PROJECT_ID

    if raw == "none":
        return None
    if not PROJECT_ID.fullmatch(raw):
        raise ConfigError(f"--project: {raw!r} is not a Mantle project id (proj_…, default, none)")
    return raw


def _alert_at(raw: str) -> tuple[int, ...] | None:
    """Thresholds, () for `none` (no alerts), None for `default` (the stage's thresholds)."""
    from mantle_gateway.settings import parse_thresholds

    if raw.strip().lower() == "default":
        return None
    try:
        return parse_thresholds(raw)
    except ValueError as exc:
        raise ConfigError(f"--alert-at: {exc}") from None


def _date(raw: str) -> str:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise ConfigError(f"--expires: {raw!r} is not YYYY-MM-DD")
    try:
        datetime.strptime(raw, "%Y-%m-%d")
    except ValueError:
        raise ConfigError(f"--expires: {raw!r} is not a real date") from None
    return raw


def _show(record: KeyRecord, *, as_json: bool) -> None:
    data = record.public()
    if as_json:
        print(json.dumps(data))
        return
    for name, value in data.items():
        print(f"{name + ':':20}{value}")
