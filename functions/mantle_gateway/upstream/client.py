"""The pooled httpx client (one per process, reused by warm invocations) and its deadlines.

httpx errors are translated here and nowhere else: before the answer's headers a timeout is 504
and any other transport failure 502 (`UpstreamTimeoutError`, `UpstreamError`); after them, while
the body streams, they become `StreamBroken`, which the relay turns into one SSE error event.
Every read is bounded by the configured timeout, by the time the Lambda has left, and by the
door's `max_silence` when it has one (a REST API cuts a response silent for 5 minutes).

A streamed body is read from the pooled HTTP/1.1 connection's h11 parser directly, not through
`iter_raw()`, which passes each HTTP chunk (Mantle sends one per SSE event) up six generators,
alone. Read directly, all the chunks already received leave as one piece, so the relay and the
door handle a burst once instead of once per event; nothing ever waits for more bytes while some
are in hand. Any other connection (HTTP/2, a proxy, a mock transport, a changed httpcore) is
read through `iter_raw()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import h11
import httpcore
import httpx

from mantle_gateway.errors import UpstreamError, UpstreamTimeoutError

_DEADLINE_MARGIN = 1.0
"""Seconds kept back from the Lambda deadline so the gateway can still end the answer cleanly."""

USER_AGENT = "mantle-gateway"
"""Sent unsigned, as HTTP clients add it (the signed headers are the caller's)."""

_READ_SIZE = 64 * 1024
"""Bytes asked of the socket per read of a streamed body (httpcore's own figure)."""


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
        # The transport itself, without httpx.Client on top: no cookie jar (a cookie from
        # Mantle must never ride along with another key's request), no redirects (a signed
        # request must never be replayed elsewhere), no auth or hooks — and none of their
        # per-request cost, about a third of httpx's CPU per call.
        self._transport = transport or httpx.HTTPTransport(
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50)
        )

    def open(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        deadline: float | None,
        max_silence: float | None = None,
    ) -> httpx.Response:
        """Send and return once the status and headers are in; the body is left to read.
        Each later read of the body waits at most as long as this one could."""
        budget = self._read_budget(deadline)
        read = budget if max_silence is None else min(budget, max_silence)
        timeout = httpx.Timeout(
            read, connect=min(self._connect, read), pool=min(self._connect, read)
        )
        request = httpx.Request(
            method,
            url,
            headers={**headers, "accept-encoding": "identity", "user-agent": USER_AGENT},
            content=body,
            extensions={"timeout": timeout.as_dict()},
        )
        try:
            response = self._transport.handle_request(request)
        except httpx.TimeoutException as exc:
            silence_limit_hit = read < budget and isinstance(exc, httpx.ReadTimeout)
            if silence_limit_hit:  # the door's limit ran out first, not the Lambda's time
                raise UpstreamTimeoutError(
                    f"The upstream sent nothing for {read:g} s, the longest this endpoint can "
                    "wait without answering; for longer answers use streaming (stream: true) "
                    "or the gateway's Function URL."
                ) from exc
            raise UpstreamTimeoutError("The upstream did not answer in time.") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError("The upstream could not be reached.") from exc
        response.request = request
        return response

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
        """Raw body bytes as they arrive; closing this iterator closes the upstream connection."""
        connection = _http11_connection(response)
        try:
            if connection is None:
                yield from response.iter_raw()
            else:
                timeouts = response.request.extensions.get("timeout", {})
                yield from _received(connection, timeouts.get("read"))
        except (httpx.TimeoutException, httpcore.TimeoutException) as exc:
            raise StreamBroken("upstream_idle_timeout") from exc
        except (httpx.HTTPError, httpcore.NetworkError, h11.ProtocolError) as exc:
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
        self._transport.close()


def _http11_connection(response: httpx.Response) -> httpcore.HTTP11Connection | None:
    """The connection under the transport's response stream → httpcore's pool stream → its
    HTTP/1.1 body stream, as httpx 0.28 and httpcore 1.0 build them; None for anything else."""
    stream: object = response.stream
    for attribute in ("_httpcore_stream", "_stream", "_connection"):
        stream = getattr(stream, attribute, None)
    if (
        isinstance(stream, httpcore.HTTP11Connection)
        and isinstance(getattr(stream, "_h11_state", None), h11.Connection)
        and isinstance(getattr(stream, "_network_stream", None), httpcore.NetworkStream)
    ):
        return stream
    return None


def _received(connection: httpcore.HTTP11Connection, timeout: float | None) -> Iterator[bytes]:
    """httpcore's own body loop, except that it yields only when h11 needs more bytes.

    Driving the connection's h11 state (not a copy) keeps it exact: after the last chunk both
    sides are DONE, so closing the response returns the connection to the pool as usual.
    """
    parser = connection._h11_state
    network = connection._network_stream
    pending: list[bytes | bytearray] = []
    while True:
        event = parser.next_event()
        if type(event) is h11.Data:
            pending.append(event.data)
        elif event is h11.NEED_DATA:
            if pending:
                yield b"".join(pending)
                pending = []
            parser.receive_data(network.read(_READ_SIZE, timeout=timeout))
        else:
            break  # EndOfMessage: the body is complete
    if pending:
        yield b"".join(pending)
