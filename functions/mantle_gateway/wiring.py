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

    from mantle_gateway.core.alerts import BudgetAlerts
    from mantle_gateway.core.pipeline import Gateway
    from mantle_gateway.store.dynamo import Dynamo
    from mantle_gateway.store.keys import KeyRecord

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
) -> Gateway:
    """Tests and the bench pass seams: credentials, an upstream transport, a clock, a Dynamo."""
    from mantle_gateway.core.alerts import AlertingLedger
    from mantle_gateway.core.auth import KeyCache
    from mantle_gateway.core.pipeline import Gateway
    from mantle_gateway.core.pricing import PriceTable
    from mantle_gateway.observability import configure
    from mantle_gateway.store.keys import KeyStore
    from mantle_gateway.store.ledger import Ledger
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
        from mantle_gateway.store.dynamo import Dynamo

        dynamo = Dynamo(region=settings.region, endpoint_url=settings.dynamodb_endpoint_url)
    signer: signing.Signer
    if settings.bedrock_api_key:
        signer = signing.BearerSigner(settings.bedrock_api_key)
    else:
        signer = signing.SigV4Signer(credentials or signing.default_credentials(), settings.region)
    keys = KeyCache(KeyStore(dynamo, settings.keys_table), settings.key_cache_ttl_seconds)
    ledger = Ledger(dynamo, usage_table=settings.usage_table, limits_table=settings.limits_table)
    alerts = budget_alerts(settings, dynamo, keys.recent, clock=clock)
    return Gateway(
        settings=settings,
        keys=keys,
        limits=LimitsStore(dynamo, settings.limits_table),
        ledger=AlertingLedger(ledger, alerts),
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


def budget_alerts(
    settings: Settings,
    dynamo: Dynamo,
    keys: Callable[[str], KeyRecord | None],
    credentials: Callable[[], ReadOnlyCredentials | None] | None = None,
    clock: Callable[[], float] = time.time,
) -> BudgetAlerts:
    """Budget alerts to EventBridge (the deployed function, signed with its role: the default
    credential chain, whatever signs Mantle calls) or to the log (`serve`), as
    BUDGET_ALERT_EVENTS says; the CLI's `usage replay` builds the same."""
    from mantle_gateway.core.alerts import BudgetAlerts
    from mantle_gateway.store.alerts import AlertMarks

    sink = None
    if settings.budget_alert_events == "eventbridge":
        from mantle_gateway.upstream.events import EventBridge, endpoint_for
        from mantle_gateway.upstream.signing import SigV4Signer, default_credentials

        sink = EventBridge(
            SigV4Signer(
                credentials or default_credentials(), settings.region, clock, service="events"
            ),
            settings.events_endpoint_url or endpoint_for(settings.region),
        )
    return BudgetAlerts(
        store=AlertMarks(dynamo, settings.limits_table),
        keys=keys,
        sink=sink,
        thresholds=settings.budget_alert_thresholds,
        stage=settings.stage,
        clock=clock,
    )
