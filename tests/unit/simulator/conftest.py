"""Fixtures for the simulator tests: a started simulator and httpx clients that sign for it.

Signing uses botocore's `SigV4Auth`, the signer the gateway uses, so these tests check that the
simulator's independent verifier agrees with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mantle_gateway.simulator import SIMULATOR_ACCESS_KEY, SIMULATOR_SECRET_KEY, Simulator

Signer = Callable[[httpx.Request], None]


def botocore_signer(
    *,
    access_key: str = SIMULATOR_ACCESS_KEY,
    secret_key: str = SIMULATOR_SECRET_KEY,
    token: str | None = None,
    region: str = "us-east-1",
    service: str = "bedrock-mantle",
    sign: tuple[str, ...] = ("content-type",),
) -> Signer:
    """An httpx request hook signing the exact body with botocore, like the gateway does.

    Only the headers named in `sign` (plus what SigV4Auth adds: host, x-amz-date, the token)
    are signed; httpx's own headers go on the wire unsigned.
    """

    def hook(request: httpx.Request) -> None:
        headers = {name: request.headers[name] for name in sign if name in request.headers}
        aws = AWSRequest(
            method=request.method, url=str(request.url), data=request.content, headers=headers
        )
        SigV4Auth(Credentials(access_key, secret_key, token), service, region).add_auth(aws)
        for name, value in aws.headers.items():
            request.headers[name] = value

    return hook


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


@pytest.fixture
def client(sim: Simulator) -> Iterator[httpx.Client]:
    """Signs every request for the default simulator credentials."""
    with httpx.Client(
        base_url=sim.url, timeout=5.0, event_hooks={"request": [botocore_signer()]}
    ) as http:
        yield http


@pytest.fixture
def make_client(sim: Simulator) -> Iterator[Callable[..., httpx.Client]]:
    """Clients signing with other settings: `make_client(service="bedrock")`.

    `before` hooks run before signing (to add headers that get signed), `after` hooks once the
    request is signed (to tamper with it).
    """
    opened: list[httpx.Client] = []

    def make(
        *, before: tuple[Signer, ...] = (), after: tuple[Signer, ...] = (), **signer: object
    ) -> httpx.Client:
        hooks = [*before, botocore_signer(**signer), *after]  # type: ignore[arg-type]
        http = httpx.Client(base_url=sim.url, timeout=5.0, event_hooks={"request": hooks})
        opened.append(http)
        return http

    yield make
    for http in opened:
        http.close()


@pytest.fixture
def sign() -> Signer:
    """The default signer as a request hook, for clients built on another HTTP library (the
    anthropic SDK sends through httpx2, which takes the same hooks)."""
    return botocore_signer()
