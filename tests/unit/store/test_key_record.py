"""A key record is its item: one attribute per field, under the table's key names for the two
that identify it, absent when unset; reading the item back gives the same record."""

from __future__ import annotations

from decimal import Decimal

from mantle_gateway import schema
from mantle_gateway.store.keys import UPDATABLE, KeyRecord

FULL = KeyRecord(
    key_id="key_0123456789abcdef",
    digest="d" * 64,
    name="finance-bot",
    owner="finance",
    status="active",
    created_at="2026-11-24T12:00:00Z",
    expires_at="2099-01-01",
    monthly_budget_usd=Decimal("25.50"),
    rpm=100,
    tpm=50000,
    models=("openai.gpt-oss-*", "qwen.*"),
    project="proj_finance01",
    alert_at=(50, 80, 100),
    hint="mgw_abcd…",
)


def test_every_field_round_trips_through_the_item() -> None:
    item = FULL.to_item()
    assert item[schema.KEYS_PK] == {"S": "d" * 64}
    assert item[schema.KEYS_ID_ATTR] == {"S": "key_0123456789abcdef"}
    assert item["monthly_budget_usd"] == {"N": "25.50"}
    assert item["models"] == {"L": [{"S": "openai.gpt-oss-*"}, {"S": "qwen.*"}]}
    assert KeyRecord.from_item(item) == FULL


def test_unset_attributes_are_absent_and_read_back_as_defaults() -> None:
    bare = KeyRecord(key_id="key_1", digest="e" * 64, name="bare")
    item = bare.to_item()
    assert not {"expires_at", "monthly_budget_usd", "rpm", "tpm", "project", "alert_at"} & (
        item.keys()
    )
    assert KeyRecord.from_item(item) == bare
    assert KeyRecord.from_item({k: v for k, v in item.items() if k != "models"}).models == ("*",)


def test_no_alerts_is_stored_apart_from_the_stage_default() -> None:
    silent = KeyRecord(key_id="key_2", digest="f" * 64, name="silent", alert_at=())
    item = silent.to_item()
    assert item["alert_at"] == {"L": []}
    assert KeyRecord.from_item(item).alert_at == ()
    assert KeyRecord.from_item(FULL.to_item()).alert_at == (50, 80, 100)


def test_public_view_has_everything_but_the_digest() -> None:
    shown = FULL.public()
    assert "digest" not in shown
    assert "d" * 64 not in repr(shown)
    assert shown["monthly_budget_usd"] == "25.50"
    assert shown["models"] == ["openai.gpt-oss-*", "qwen.*"]
    assert shown.keys() == {f for f in FULL.__dataclass_fields__ if f != "digest"}


def test_updates_reach_limits_and_labels_but_not_identity_or_status() -> None:
    assert {
        "name",
        "owner",
        "expires_at",
        "monthly_budget_usd",
        "rpm",
        "tpm",
        "models",
        "project",
        "alert_at",
    } == UPDATABLE
