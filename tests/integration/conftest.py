"""Real servers, started once per run: DynamoDB (moto server mode), the Mantle simulator, and the
local door running the gateway, all on loopback ephemeral ports. Tests drive them with the
official openai and anthropic SDKs and read the ledger straight from DynamoDB.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import anthropic
import openai
import pytest

from mantle_gateway import schema, simulator, wiring
from mantle_gateway.cli.local_env import EmbeddedDynamoDB
from mantle_gateway.core.auth import issue_key
from mantle_gateway.core.pipeline import Gateway
from mantle_gateway.doors.local import LocalServer, serve
from mantle_gateway.settings import Settings
from mantle_gateway.store.dynamo import Dynamo, from_item
from mantle_gateway.store.keys import KeyRecord, KeyStore
from mantle_gateway.store.tables import create_tables
from mantle_gateway.upstream.signing import static_credentials

ISSUED_SECRETS: list[str] = []
"""Every key secret issued in this run, for the plaintext-at-rest check."""


@pytest.fixture(scope="session")
def dynamodb() -> Iterator[EmbeddedDynamoDB]:
    server = EmbeddedDynamoDB().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sim() -> Iterator[simulator.Simulator]:
    with simulator.Simulator() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_simulator(sim: simulator.Simulator) -> None:
    sim.reset()
    sim.reasoning_tokens = 0
    sim.cached_tokens = 0
    sim.cache_write_tokens = 0
    sim.message_tokens = 8
    sim.event_delay = 0.0
    sim.responses_event_lines = False


@pytest.fixture(scope="session")
def settings(dynamodb: EmbeddedDynamoDB, sim: simulator.Simulator) -> Settings:
    settings = Settings.from_env(
        {
            "AWS_REGION": "us-east-1",
            "MANTLE_ENDPOINT_URL": sim.url,
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint_url,
            "UPSTREAM_READ_TIMEOUT_SECONDS": "5",
            "POWERTOOLS_METRICS_DISABLED": "true",  # EMF lines are checked in unit tests
        }
    )
    create_tables(Dynamo(region="us-east-1", endpoint_url=dynamodb.endpoint_url), settings)
    return settings


@pytest.fixture(scope="session")
def lambda_gateway(settings: Settings) -> Gateway:
    """What `lambda_entry.handler` builds in AWS, over the session's simulator and DynamoDB
    (call it through `tests/support/lambda_door.invoke`)."""
    return wiring.build(
        settings,
        credentials=static_credentials(
            simulator.SIMULATOR_ACCESS_KEY, simulator.SIMULATOR_SECRET_KEY
        ),
    )


@pytest.fixture(scope="session")
def dynamo(settings: Settings) -> Dynamo:
    return Dynamo(region=settings.region, endpoint_url=settings.dynamodb_endpoint_url)


GatewayFactory = Callable[..., LocalServer]


@pytest.fixture(scope="session")
def start_gateway(settings: Settings) -> Iterator[GatewayFactory]:
    """Start a local door for these settings (changed with keyword overrides)."""
    servers: list[LocalServer] = []

    def start(
        *, clock: Callable[[], float] = time.time, dynamo: Dynamo | None = None, **changes: Any
    ) -> LocalServer:
        chosen = dataclasses.replace(settings, **changes)
        gateway = wiring.build(
            chosen,
            credentials=static_credentials(
                simulator.SIMULATOR_ACCESS_KEY, simulator.SIMULATOR_SECRET_KEY
            ),
            clock=clock,
            dynamo=dynamo,
        )
        server = serve(gateway, "127.0.0.1", 0, chosen.max_request_bytes)
        server.start_background()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def gateway(start_gateway: GatewayFactory) -> LocalServer:
    return start_gateway()


KeyFactory = Callable[..., tuple[str, KeyRecord]]


@pytest.fixture(scope="session")
def issued_secrets() -> list[str]:
    return ISSUED_SECRETS


@pytest.fixture
def new_key(settings: Settings, dynamo: Dynamo) -> KeyFactory:
    def make(**options: Any) -> tuple[str, KeyRecord]:
        store = KeyStore(dynamo, settings.keys_table)
        secret, record = issue_key(store, name="test", now=datetime.now(UTC), **options)
        ISSUED_SECRETS.append(secret)
        return secret, record

    return make


@pytest.fixture
def client(gateway: LocalServer) -> Callable[[str], openai.OpenAI]:
    def make(key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=gateway.url + "/openai/v1", api_key=key, max_retries=0)

    return make


@pytest.fixture
def claude(gateway: LocalServer) -> Callable[..., anthropic.Anthropic]:
    """The official anthropic SDK pointed at the gateway as its users point it:
    base URL `<gateway>/anthropic`, the gateway key as `api_key` (or `auth_token`)."""

    def make(
        key: str | None = None, *, url: str | None = None, **options: Any
    ) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=(url or gateway.url) + "/anthropic", api_key=key, max_retries=0, **options
        )

    return make


@pytest.fixture
def usage_items(settings: Settings, dynamo: Dynamo) -> Callable[..., list[dict[str, Any]]]:
    """The key's usage items this month, waiting (bounded) until `count` are there.

    The gateway writes usage after the client has its last byte, so a test that has just
    read an answer may look a moment before the write lands.
    """

    def read(
        key_id: str, count: int = 1, timeout: float = 5.0, month: str | None = None
    ) -> list[dict[str, Any]]:
        month = month or datetime.now(UTC).strftime("%Y-%m")
        end = time.monotonic() + timeout
        while True:
            answer = dynamo.client.query(
                TableName=settings.usage_table,
                KeyConditionExpression="#pk = :pk",
                ExpressionAttributeNames={"#pk": schema.USAGE_PK},
                ExpressionAttributeValues={":pk": {"S": f"{key_id}#{month}"}},
                ConsistentRead=True,
            )
            items = [from_item(i) for i in answer.get("Items", [])]
            if len(items) >= count or time.monotonic() > end:
                return items
            time.sleep(0.02)

    return read
