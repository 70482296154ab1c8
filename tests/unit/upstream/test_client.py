"""The pooled upstream client keeps no state from one key's request to another's."""

import httpx

from mantle_gateway.upstream.client import UpstreamClient


def test_upstream_cookies_are_never_replayed() -> None:
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "AWSALB=tenantA; Path=/"}, json={})

    client = UpstreamClient(
        "https://mantle.example",
        connect_timeout=1,
        read_timeout=1,
        transport=httpx.MockTransport(answer),
    )
    for _ in range(2):
        client.read_all(client.open("GET", "https://mantle.example/v1/models", {}, b"", None))
    assert seen == [None, None]
