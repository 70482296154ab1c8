"""In-memory stand-ins for the gateway's DynamoDB stores, for the in-process measures.

They implement the small Protocols the core asks for (`core.auth.KeyLookup`,
`core.pipeline.Limits`, `core.metering.LedgerWriter` and `Owners`) and do as little as
possible, so what `Gateway.handle` costs with them is the gateway's own CPU, without DynamoDB
(and without the botocore (de)serialization those calls would cost: the live measure reports
that separately).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import httpx

from bench import payloads
from mantle_gateway.core.auth import KeyCache, digest
from mantle_gateway.core.pipeline import Gateway
from mantle_gateway.core.pricing import PriceTable
from mantle_gateway.messages import GatewayRequest
from mantle_gateway.settings import Settings
from mantle_gateway.simulator import SIMULATOR_ACCESS_KEY, SIMULATOR_SECRET_KEY
from mantle_gateway.store.keys import KeyRecord
from mantle_gateway.store.limits import Ask, Hold, RateState, Reservation, Verdict
from mantle_gateway.store.responses import ResponseOwner
from mantle_gateway.upstream.client import UpstreamClient
from mantle_gateway.upstream.signing import SigV4Signer, static_credentials
from mantle_gateway.usage import UsageRecord

SECRET = "mgw_" + "b" * 43
"""A well-formed key (the format check runs as it would for a real one)."""


class FakeKeys:
    def __init__(self, record: KeyRecord) -> None:
        self._record = record

    def get_by_digest(self, secret_digest: str) -> KeyRecord | None:
        return self._record if secret_digest == self._record.digest else None


class FakeLimits:
    """Always admits (as with a real key that has rate limits and a budget), so the request goes
    on to the upstream."""

    def admit(self, ask: Ask) -> Verdict:
        return Verdict(None, RateState(ask.rpm, ask.tpm, 1, 0, 60 - ask.now.second))

    def release(self, reservation: Reservation) -> None:
        return None

    def sweep(self, key_id: str, month: str, holds: Sequence[Hold]) -> None:
        return None


class FakeLedger:
    def __init__(self) -> None:
        self.records = 0

    def record(self, record: UsageRecord, reservation: Reservation | None = None) -> bool:
        self.records += 1
        return True


class FakeOwners:
    def __init__(self) -> None:
        self._owners: dict[str, ResponseOwner] = {}

    def put(self, response_id: str, owner: ResponseOwner) -> None:
        self._owners[response_id] = owner

    def get(self, response_id: str) -> ResponseOwner | None:
        return self._owners.get(response_id)

    def settle(self, response_id: str) -> None:
        self._owners.pop(response_id, None)


def limited_key() -> KeyRecord:
    """A key with every check enabled: model patterns, rpm, tpm and a monthly budget."""
    return KeyRecord(
        key_id="key_bench",
        digest=digest(SECRET),
        name="bench",
        monthly_budget_usd=Decimal(1_000_000),
        rpm=1_000_000,
        tpm=1_000_000_000,
        models=("openai.gpt-oss-*",),
    )


def mock_upstream(stream_tokens: int) -> httpx.MockTransport:
    """Mantle as a canned answer: the chat JSON, or a stream of `stream_tokens` tokens."""
    completion = payloads.chat_completion_bytes()
    events = payloads.chat_stream_events(stream_tokens)

    def answer(request: httpx.Request) -> httpx.Response:
        if b'"stream":true' in request.content:
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=iter(events)
            )
        return httpx.Response(200, headers={"content-type": "application/json"}, content=completion)

    return httpx.MockTransport(answer)


def in_process_gateway(stream_tokens: int = 16) -> tuple[Gateway, FakeLedger]:
    """A `Gateway` wired like `wiring.build` but with fake stores and a mock upstream."""
    settings = Settings.from_env({"AWS_REGION": "us-east-1", "LOG_LEVEL": "INFO"})
    ledger = FakeLedger()
    gateway = Gateway(
        settings=settings,
        keys=KeyCache(FakeKeys(limited_key()), settings.key_cache_ttl_seconds),
        limits=FakeLimits(),
        ledger=ledger,
        owners=FakeOwners(),
        upstream=UpstreamClient(
            settings.mantle_endpoint_url,
            connect_timeout=settings.upstream_connect_timeout_seconds,
            read_timeout=settings.upstream_read_timeout_seconds,
            transport=mock_upstream(stream_tokens),
        ),
        signer=SigV4Signer(
            static_credentials(SIMULATOR_ACCESS_KEY, SIMULATOR_SECRET_KEY), settings.region
        ),
        prices=PriceTable(settings.price_overrides),
    )
    return gateway, ledger


def chat_request(*, stream: bool, max_tokens: int = payloads.NON_STREAM_TOKENS) -> GatewayRequest:
    """What the local door would hand the core for one chat call."""
    return GatewayRequest(
        method="POST",
        path=payloads.GATEWAY_CHAT_PATH,
        headers={
            "authorization": f"Bearer {SECRET}",
            "content-type": "application/json",
            "user-agent": "bench",
            "accept": "application/json",
        },
        body=payloads.chat_body(max_tokens, stream=stream),
        door="local",
    )
