"""Builds the process-wide Gateway once: settings, httpx pool, stores, key cache, signer.

A warm Lambda (or the local door) reuses the same object for every request, so connection
pools and the key cache survive between invocations. Nothing here runs at import time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from mantle_gateway.settings import Settings

if TYPE_CHECKING:
    import httpx
    from botocore.credentials import ReadOnlyCredentials

    from mantle_gateway.core.metering import LedgerWriter
    from mantle_gateway.core.pipeline import Gateway
    from mantle_gateway.store.background_ledger import BackgroundLedger
    from mantle_gateway.store.dynamo import Dynamo
    from mantle_gateway.store.ledger import Ledger

_lock = threading.Lock()
_gateway: Gateway | None = None


def gateway() -> Gateway:
    """The process's Gateway, built from the environment on first use."""
    global _gateway
    if _gateway is None:
        with _lock:
            if _gateway is None:
                _gateway = build(Settings.load())
    return _gateway


def build(
    settings: Settings,
    *,
    credentials: Callable[[], ReadOnlyCredentials | None] | None = None,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    dynamo: Dynamo | None = None,
    ledger: LedgerWriter | None = None,
) -> Gateway:
    """Tests and the bench pass seams: credentials, an upstream transport, a clock, a Dynamo,
    the usage writer (by default the ledger, written before the answer is done with)."""
    from mantle_gateway.core.auth import KeyCache
    from mantle_gateway.core.pipeline import Gateway
    from mantle_gateway.core.pricing import PriceTable
    from mantle_gateway.observability import configure
    from mantle_gateway.store.keys import KeyStore
    from mantle_gateway.store.limits import LimitsStore
    from mantle_gateway.store.responses import ResponseOwners
    from mantle_gateway.upstream import signing
    from mantle_gateway.upstream.client import UpstreamClient

    configure(
        level=settings.log_level,
        metrics_namespace=settings.metrics_namespace,
        metrics_enabled=settings.metrics_enabled,
    )
    if dynamo is None:
        dynamo = _dynamo(settings)
    signer: signing.Signer
    if settings.bedrock_api_key:
        signer = signing.BearerSigner(settings.bedrock_api_key)
    else:
        signer = signing.SigV4Signer(credentials or signing.default_credentials(), settings.region)
    return Gateway(
        settings=settings,
        keys=KeyCache(KeyStore(dynamo, settings.keys_table), settings.key_cache_ttl_seconds),
        limits=LimitsStore(dynamo, settings.limits_table),
        ledger=_ledger(dynamo, settings) if ledger is None else ledger,
        owners=ResponseOwners(dynamo, settings.usage_table),
        upstream=UpstreamClient(
            settings.mantle_endpoint_url,
            connect_timeout=settings.upstream_connect_timeout_seconds,
            read_timeout=settings.upstream_read_timeout_seconds,
            transport=transport,
            clock=clock,
        ),
        signer=signer,
        prices=PriceTable(settings.price_overrides, region=settings.mantle_region),
        clock=clock,
    )


def build_local(
    settings: Settings,
    *,
    credentials: Callable[[], ReadOnlyCredentials | None] | None = None,
    dynamo: Dynamo | None = None,
) -> tuple[Gateway, BackgroundLedger]:
    """The local door's Gateway: its usage goes through a background writer, so a keep-alive
    client's next request does not wait for the last one's write; `serve` drains the writer on
    exit. (The Lambda doors use `build`: an invocation writes before it ends.)"""
    from mantle_gateway.store.background_ledger import BackgroundLedger

    if dynamo is None:
        dynamo = _dynamo(settings)
    writer = BackgroundLedger(_ledger(dynamo, settings))
    return build(settings, credentials=credentials, dynamo=dynamo, ledger=writer), writer


def _dynamo(settings: Settings) -> Dynamo:
    from mantle_gateway.store.dynamo import Dynamo

    return Dynamo(region=settings.region, endpoint_url=settings.dynamodb_endpoint_url)


def _ledger(dynamo: Dynamo, settings: Settings) -> Ledger:
    from mantle_gateway.store.ledger import Ledger

    return Ledger(dynamo, usage_table=settings.usage_table, limits_table=settings.limits_table)
