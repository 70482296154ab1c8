"""Who is calling: key format, digest, extraction from headers, cached lookup, expiry, models.

Keys look like `mgw_<43 url-safe chars>` (256 random bits); only their SHA-256 digest is stored.
A malformed key is refused without touching DynamoDB. Found keys are cached in-process for
`KEY_CACHE_TTL_SECONDS` (default 30, at most 60): a revoked key stops working within that time
on every warm instance, which is the price of keeping warm requests off DynamoDB.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Protocol

from mantle_gateway.errors import (
    AuthenticationError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from mantle_gateway.store.dynamo import StoreError
from mantle_gateway.store.keys import KeyRecord

KEY_PREFIX = "mgw_"
_KEY_LENGTH = len(KEY_PREFIX) + 43
_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class KeyLookup(Protocol):
    def get_by_digest(self, digest: str) -> KeyRecord | None: ...


class KeyWriter(Protocol):
    def put_new(self, record: KeyRecord) -> None: ...


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def extract_key(headers: Mapping[str, str]) -> str | None:
    """`x-api-key` wins over `Authorization: Bearer` (DESIGN §5)."""
    key = headers.get("x-api-key", "").strip()
    if key:
        return key
    scheme, _, value = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def well_formed(secret: str) -> bool:
    return (
        len(secret) == _KEY_LENGTH
        and secret.startswith(KEY_PREFIX)
        and all(ch in _URLSAFE for ch in secret[len(KEY_PREFIX) :])
    )


class KeyCache:
    """Digest → (record or None, expiry); misses are cached briefly to shed key-guessing load."""

    NEGATIVE_TTL = 5.0

    def __init__(
        self,
        lookup: KeyLookup,
        ttl_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._entries: dict[str, tuple[KeyRecord | None, float]] = {}
        self._by_id: dict[str, KeyRecord] = {}
        self._lock = threading.Lock()

    def get(self, secret_digest: str) -> KeyRecord | None:
        now = self._monotonic()
        entry = self._entries.get(secret_digest)
        if entry is not None and entry[1] > now:
            return entry[0]
        try:
            record = self._lookup.get_by_digest(secret_digest)
        except StoreError as exc:
            raise ServiceUnavailableError(
                "The key store is unavailable; try again shortly."
            ) from exc
        ttl = self._ttl if record is not None else min(self._ttl, self.NEGATIVE_TTL)
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
                self._by_id.clear()
            self._entries[secret_digest] = (record, now + ttl)
            if record is not None:
                self._by_id[record.key_id] = record
        return record

    def recent(self, key_id: str) -> KeyRecord | None:
        """The key as this process last read it, by id, expired or not: what the work after an
        answer (budget alerts) needs of a key a request just authenticated, without a read."""
        return self._by_id.get(key_id)


def issue_key(
    store: KeyWriter,
    *,
    name: str,
    now: datetime,
    owner: str = "",
    monthly_budget_usd: Decimal | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    models: tuple[str, ...] = ("*",),
    expires_at: str | None = None,
    project: str | None = None,
    alert_at: tuple[int, ...] | None = None,
    guardrail: str | None = None,
) -> tuple[str, KeyRecord]:
    """Make a new key; the secret is returned once and only its digest is stored."""
    secret = new_secret()
    record = KeyRecord(
        key_id=new_key_id(),
        digest=digest(secret),
        name=name,
        owner=owner,
        created_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        expires_at=expires_at,
        guardrail=guardrail,
        monthly_budget_usd=monthly_budget_usd,
        rpm=rpm,
        tpm=tpm,
        models=models,
        project=project,
        alert_at=alert_at,
        hint=secret[: len(KEY_PREFIX) + 4] + "…",
    )
    store.put_new(record)
    return secret, record


def authenticate(headers: Mapping[str, str], cache: KeyCache, now: datetime) -> KeyRecord:
    record = identify(headers, cache)
    check_usable(record, now)
    return record


def identify(headers: Mapping[str, str], cache: KeyCache) -> KeyRecord:
    """The key record the request's key names (401 when none does), whatever its state: once
    known, its id may go in the logs of the refusals that follow."""
    secret = extract_key(headers)
    if secret is None:
        raise AuthenticationError(
            "Missing API key: send it as `Authorization: Bearer <key>` or `x-api-key`."
        )
    if not well_formed(secret):
        raise AuthenticationError("Incorrect API key provided.")
    record = cache.get(digest(secret))
    if record is None:
        raise AuthenticationError("Incorrect API key provided.")
    return record


def check_usable(record: KeyRecord, now: datetime) -> None:
    """401 for a revoked or expired key."""
    if record.status != "active":
        raise AuthenticationError(f"API key {record.key_id} has been revoked.")
    if record.expires_at is not None and now.strftime("%Y-%m-%d") >= record.expires_at:
        raise AuthenticationError(f"API key {record.key_id} expired on {record.expires_at}.")


def authorize_model(record: KeyRecord, model: str) -> None:
    if not any(fnmatchcase(model, pattern) for pattern in record.models):
        raise PermissionDeniedError(
            f"API key {record.key_id} is not permitted to use this model.", param="model"
        )
