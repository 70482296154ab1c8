"""Keys: extraction order, format, digest-only storage, cache, revocation, expiry, model globs."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from mantle_gateway.core import auth
from mantle_gateway.errors import (
    AuthenticationError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from mantle_gateway.store.dynamo import StoreError
from mantle_gateway.store.keys import KeyRecord

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class FakeKeys:
    def __init__(self) -> None:
        self.items: dict[str, KeyRecord] = {}
        self.lookups = 0
        self.fail = False

    def put_new(self, record: KeyRecord) -> None:
        self.items[record.digest] = record

    def get_by_digest(self, digest: str) -> KeyRecord | None:
        self.lookups += 1
        if self.fail:
            raise StoreError("down")
        return self.items.get(digest)


def test_x_api_key_wins_over_bearer() -> None:
    assert auth.extract_key({"x-api-key": "a", "authorization": "Bearer b"}) == "a"
    assert auth.extract_key({"authorization": "Bearer b"}) == "b"
    assert auth.extract_key({"authorization": "Basic b"}) is None


def test_issued_key_is_stored_as_digest_only() -> None:
    store = FakeKeys()
    secret, record = auth.issue_key(store, name="team", now=NOW)
    assert auth.well_formed(secret)
    assert record.digest == auth.digest(secret)
    assert secret not in repr(record.to_item())


def test_cache_keeps_warm_requests_off_the_store_until_ttl() -> None:
    store = FakeKeys()
    secret, _ = auth.issue_key(store, name="t", now=NOW)
    clock = [0.0]
    cache = auth.KeyCache(store, ttl_seconds=30, monotonic=lambda: clock[0])
    headers = {"authorization": f"Bearer {secret}"}
    auth.authenticate(headers, cache, NOW)
    auth.authenticate(headers, cache, NOW)
    assert store.lookups == 1
    record = store.items[auth.digest(secret)]
    store.items[record.digest] = replace(record, status="revoked")
    clock[0] = 31.0
    with pytest.raises(AuthenticationError, match="revoked"):
        auth.authenticate(headers, cache, NOW)


@pytest.mark.parametrize(
    "headers", [{}, {"authorization": "Bearer nope"}, {"x-api-key": "mgw_" + "a" * 43}]
)
def test_missing_malformed_or_unknown_key_is_401(headers: dict[str, str]) -> None:
    cache = auth.KeyCache(FakeKeys(), ttl_seconds=30)
    with pytest.raises(AuthenticationError):
        auth.authenticate(headers, cache, NOW)


def test_expired_key_is_401() -> None:
    store = FakeKeys()
    secret, _ = auth.issue_key(store, name="t", now=NOW, expires_at="2026-11-24")
    cache = auth.KeyCache(store, ttl_seconds=30)
    with pytest.raises(AuthenticationError, match="expired"):
        auth.authenticate({"x-api-key": secret}, cache, NOW)


def test_store_down_fails_closed_with_503() -> None:
    store = FakeKeys()
    secret, _ = auth.issue_key(store, name="t", now=NOW)
    store.fail = True
    cache = auth.KeyCache(store, ttl_seconds=30)
    with pytest.raises(ServiceUnavailableError):
        auth.authenticate({"x-api-key": secret}, cache, NOW)


def test_model_globs() -> None:
    store = FakeKeys()
    _, record = auth.issue_key(store, name="t", now=NOW, models=("openai.gpt-oss-*",))
    auth.authorize_model(record, "openai.gpt-oss-120b")
    with pytest.raises(PermissionDeniedError):
        auth.authorize_model(record, "openai.gpt-5.5")
