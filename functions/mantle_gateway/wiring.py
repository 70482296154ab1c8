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

    from mantle_gateway.core.alerts import AlertingLedger, BudgetAlerts
    from mantle_gateway.core.metering import LedgerWriter
    from mantle_gateway.core.pipeline import Gateway
    from mantle_gateway.store.background_ledger import BackgroundLedger
    from mantle_gateway.store.dynamo import Dynamo
    from mantle_gateway.store.keys import KeyRecord
    from mantle_gateway.store.ledger import Ledger
    from mantle_gateway.upstream.signing import CredentialSource

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
    credentials: CredentialSource | None = None,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    dynamo: Dynamo | None = None,
    usage_writer: Callable[[AlertingLedger], LedgerWriter] | None = None,
) -> Gateway:
    """Tests and the bench pass seams: credentials, an upstream transport, a clock, a Dynamo;
    `usage_writer` wraps the ledger (with its budget alerts), e.g. in the local door's background
    writer (by default usage is written before the answer is done with)."""
    from mantle_gateway.core.alerts import AlertingLedger
    from mantle_gateway.core.auth import KeyCache
    from mantle_gateway.core.guardrails import Guard
    from mantle_gateway.core.pipeline import Gateway
    from mantle_gateway.core.pricing import PriceTable
    from mantle_gateway.observability import configure
    from mantle_gateway.store.keys import KeyStore
    from mantle_gateway.store.limits import LimitsStore
    from mantle_gateway.store.responses import ResponseOwners
    from mantle_gateway.upstream import guardrail, signing
    from mantle_gateway.upstream.client import UpstreamClient

    configure(
        level=settings.log_level,
        metrics_namespace=settings.metrics_namespace,
        metrics_enabled=settings.metrics_enabled,
    )
    if dynamo is None:
        dynamo = _dynamo(settings)
    signer: signing.Signer
    guardrail_signer: signing.Signer
    if settings.bedrock_api_key:
        signer = guardrail_signer = signing.BearerSigner(settings.bedrock_api_key)
    else:
        chain = credentials or signing.default_credentials()
        signer = signing.SigV4Signer(chain, settings.region)
        guardrail_signer = signing.SigV4Signer(
            chain, settings.mantle_region, service=guardrail.SERVICE
        )
    upstream = UpstreamClient(
        settings.mantle_endpoint_url,
        connect_timeout=settings.upstream_connect_timeout_seconds,
        read_timeout=settings.upstream_read_timeout_seconds,
        transport=transport,
        clock=clock,
    )
    guard = Guard(
        settings,
        guardrail.GuardrailClient(
            settings.bedrock_runtime_endpoint_url, signer=guardrail_signer, upstream=upstream
        ),
    )
    keys = KeyCache(KeyStore(dynamo, settings.keys_table), settings.key_cache_ttl_seconds)
    alerts = budget_alerts(settings, dynamo, keys.recent, clock=clock)
    ledger = AlertingLedger(_ledger(dynamo, settings), alerts)
    return Gateway(
        settings=settings,
        keys=keys,
        limits=LimitsStore(dynamo, settings.limits_table),
        ledger=ledger if usage_writer is None else usage_writer(ledger),
        owners=ResponseOwners(dynamo, settings.usage_table),
        upstream=upstream,
        signer=signer,
        prices=PriceTable(settings.price_overrides, region=settings.mantle_region),
        guard=guard,
        clock=clock,
    )


def budget_alerts(
    settings: Settings,
    dynamo: Dynamo,
    keys: Callable[[str], KeyRecord | None],
    credentials: CredentialSource | None = None,
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


def build_local(
    settings: Settings,
    *,
    credentials: CredentialSource | None = None,
    dynamo: Dynamo | None = None,
) -> tuple[Gateway, BackgroundLedger]:
    """The local door's Gateway: its usage goes through a background writer, so a keep-alive
    client's next request does not wait for the last one's write; `serve` drains the writer on
    exit. (The Lambda doors use `build`: an invocation writes before it ends.)"""
    from mantle_gateway.store.background_ledger import BackgroundLedger

    writers: list[BackgroundLedger] = []

    def in_background(ledger: AlertingLedger) -> LedgerWriter:
        writers.append(BackgroundLedger(ledger))
        return writers[0]

    gateway = build(settings, credentials=credentials, dynamo=dynamo, usage_writer=in_background)
    return gateway, writers[0]


def _dynamo(settings: Settings) -> Dynamo:
    from mantle_gateway.store.dynamo import Dynamo

    return Dynamo(region=settings.region, endpoint_url=settings.dynamodb_endpoint_url)


def _ledger(dynamo: Dynamo, settings: Settings) -> Ledger:
    from mantle_gateway.store.ledger import Ledger

    return Ledger(dynamo, usage_table=settings.usage_table, limits_table=settings.limits_table)
