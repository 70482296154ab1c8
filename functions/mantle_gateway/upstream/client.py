"""The pooled httpx client (one per process, reused by warm invocations) and its deadlines.

httpx errors are translated here and nowhere else: before the answer's headers a timeout is 504
and any other transport failure 502 (`UpstreamTimeoutError`, `UpstreamError`); after them, while
the body streams, they become `StreamBroken`, which the relay turns into one SSE error event.
Every read is bounded both by the configured timeout and by the time the Lambda has left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from mantle_gateway.errors import UpstreamError, UpstreamTimeoutError

_DEADLINE_MARGIN = 1.0
"""Seconds kept back from the Lambda deadline so the gateway can still end the answer cleanly."""


_NO_COOKIES = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


class StreamBroken(Exception):
    """The upstream stopped in the middle of a body (dropped, reset, or silent too long)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UpstreamClient:
    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._connect = connect_timeout
        self._read = read_timeout
        self._clock = clock
        self._client = httpx.Client(
            transport=transport,
            cookies=_NO_COOKIES,  # a cookie from Mantle must never ride along with another key
            follow_redirects=False,  # a signed request must never be replayed elsewhere
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        )

    def open(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        deadline: float | None,
    ) -> httpx.Response:
        """Send and return once the status and headers are in; the body is left to read."""
        read = self._read_budget(deadline)
        timeout = httpx.Timeout(
            read, connect=min(self._connect, read), pool=min(self._connect, read)
        )
        request = self._client.build_request(
            method, url, headers={**headers, "accept-encoding": "identity"}, content=body
        )
        request.extensions["timeout"] = timeout.as_dict()
        try:
            return self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeoutError("The upstream did not answer in time.") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError("The upstream could not be reached.") from exc

    def read_all(self, response: httpx.Response) -> bytes:
        try:
            return response.read()
        except httpx.TimeoutException as exc:
            raise UpstreamTimeoutError("The upstream did not finish its answer in time.") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError("The upstream connection broke before the answer ended.") from exc
        finally:
            response.close()

    def chunks(self, response: httpx.Response) -> Iterator[bytes]:
        """Raw body chunks as they arrive; closing this iterator closes the upstream connection."""
        try:
            yield from response.iter_raw()
        except httpx.TimeoutException as exc:
            raise StreamBroken("upstream_idle_timeout") from exc
        except httpx.HTTPError as exc:
            raise StreamBroken("upstream_dropped") from exc
        finally:
            response.close()

    def _read_budget(self, deadline: float | None) -> float:
        if deadline is None:
            return self._read
        left = deadline - self._clock() - _DEADLINE_MARGIN
        if left <= 0.05:
            raise UpstreamTimeoutError("No time is left to call the upstream.")
        return min(self._read, left)

    def close(self) -> None:
        self._client.close()
