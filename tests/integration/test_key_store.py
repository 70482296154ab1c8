"""Key writes against moto's server: each write changes only what it means to, and revoked is
final, whatever order an update and a revoke from two admins reach DynamoDB in."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from mantle_gateway.core.auth import issue_key
from mantle_gateway.settings import Settings
from mantle_gateway.store.dynamo import Dynamo
from mantle_gateway.store.keys import KeyRecord, KeyStore, KeyWriteRefused

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(dynamo: Dynamo, settings: Settings) -> KeyStore:
    return KeyStore(dynamo, settings.keys_table)


def new_key(store: KeyStore, **options: Any) -> KeyRecord:
    _, record = issue_key(store, name="race", now=NOW, rpm=10, tpm=1000, **options)
    return record


def stored(store: KeyStore, record: KeyRecord) -> KeyRecord:
    found = store.get_by_digest(record.digest)
    assert found is not None
    return found


def test_an_update_that_read_the_key_before_a_revoke_is_refused(store: KeyStore) -> None:
    # GIVEN an admin who read the key while it was active (the CLI's read before `update`)
    record = new_key(store)
    stale = store.get_by_id(record.key_id)
    assert stale is not None and stale.status == "active"
    # WHEN another admin revokes it, and then the first one's update arrives
    store.revoke(record)
    with pytest.raises(KeyWriteRefused, match="is revoked"):
        store.update(stale, rpm=7)
    # THEN the key stays revoked, and the refused update changed nothing
    final = stored(store, record)
    assert final.status == "revoked"
    assert final.rpm == 10


def test_updates_from_two_stale_reads_both_land(store: KeyStore) -> None:
    # GIVEN two admins who read the same key
    record = new_key(store)
    first, second = store.get_by_id(record.key_id), store.get_by_id(record.key_id)
    assert first is not None and second is not None
    # WHEN each changes a different limit
    store.update(first, rpm=7)
    after = store.update(second, tpm=500, monthly_budget_usd=Decimal("2.50"))
    # THEN neither write undid the other: each set only its own attributes
    assert (after.rpm, after.tpm, after.monthly_budget_usd) == (7, 500, Decimal("2.50"))
    assert stored(store, record) == after


def test_update_returns_the_key_as_stored_and_none_removes_an_attribute(store: KeyStore) -> None:
    record = new_key(store, expires_at="2099-01-01", models=("openai.gpt-oss-*",))
    updated = store.update(record, expires_at=None, models=("openai.*", "qwen.*"), name="renamed")
    assert updated.expires_at is None
    assert updated.models == ("openai.*", "qwen.*")
    assert updated.name == "renamed"
    assert (updated.created_at, updated.hint, updated.digest) == (
        record.created_at,
        record.hint,
        record.digest,
    )
    assert stored(store, record) == updated


def test_revoking_twice_is_fine_and_revoked_is_final(store: KeyStore) -> None:
    record = new_key(store)
    assert store.revoke(record).status == "revoked"
    assert store.revoke(record).status == "revoked"
    with pytest.raises(KeyWriteRefused):
        store.update(record, name="back")
    assert stored(store, record).status == "revoked"


def test_writes_to_a_key_that_does_not_exist_are_refused(store: KeyStore) -> None:
    ghost = KeyRecord(key_id="key_ghost", digest="0" * 64, name="ghost")
    with pytest.raises(KeyWriteRefused, match="no longer exists"):
        store.update(ghost, rpm=1)
    with pytest.raises(KeyWriteRefused, match="no longer exists"):
        store.revoke(ghost)
    assert store.get_by_digest(ghost.digest) is None


def test_update_may_not_change_identity_or_status(store: KeyStore) -> None:
    record = new_key(store)
    for change in ({"status": "active"}, {"digest": "x"}, {"key_id": "y"}, {}):
        with pytest.raises(ValueError, match="cannot update"):
            store.update(record, **change)


def race(updater: KeyStore, revoker: KeyStore, record: KeyRecord, rpm: int) -> str:
    """One round: both admins released together; returns how the update ended."""
    start = threading.Barrier(2)
    ended: list[str] = []

    def update() -> None:
        start.wait()
        read = updater.get_by_id(record.key_id)
        assert read is not None
        try:
            updater.update(read, rpm=rpm)
            ended.append("updated")
        except KeyWriteRefused:
            ended.append("refused")

    def revoke() -> None:
        start.wait()
        read = revoker.get_by_id(record.key_id)  # the CLI reads the key before it revokes
        assert read is not None
        revoker.revoke(read)
        ended.append("revoked")

    threads = [threading.Thread(target=update), threading.Thread(target=revoke)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(ended) == 2 and "revoked" in ended, ended  # neither thread failed
    return next(e for e in ended if e != "revoked")


def test_update_racing_revoke_always_ends_revoked(settings: Settings, store: KeyStore) -> None:
    """Two admins (two stores, two threads), released together, many times: one reads the key
    and updates it, the other revokes it. Whichever lands last, the key ends revoked."""
    updater, revoker = (
        KeyStore(
            Dynamo(region=settings.region, endpoint_url=settings.dynamodb_endpoint_url),
            settings.keys_table,
        )
        for _ in range(2)
    )
    for round_ in range(40):
        record = new_key(store)
        update = race(updater, revoker, record, rpm=100 + round_)
        final = stored(store, record)
        assert final.status == "revoked", f"round {round_}"
        # An update that landed first is kept; one that came after the revoke changed nothing.
        assert final.rpm == (100 + round_ if update == "updated" else 10)
