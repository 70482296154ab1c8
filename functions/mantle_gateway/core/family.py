"""An API family: what differs between the OpenAI surfaces and Anthropic Messages, behind the
same pipeline steps (docs/decisions/0009-anthropic-surface.md).

The route names the family (`Route.family`); the pipeline looks its `Family` up once per
request, keeps it on the `Call`, and asks it at the few points where the two APIs differ: which
client headers go upstream, the exact bytes to sign, the upstream path prefix (and whether a
refusal means "try the other prefix"), how a JSON answer reports usage, how rate-limit
headers are spelled, who reads its stream's events, and where its text sits for a guardrail. The
error shape is the one thing it does not decide: it follows the path (`errors.shape_for`), so
that even a request no route matched is refused in the shape its client reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mantle_gateway.core.call import Call
    from mantle_gateway.core.guard_text import Slot
    from mantle_gateway.core.routes import Route
    from mantle_gateway.store.limits import RateState
    from mantle_gateway.stream.relay import EventReader, Observation
    from mantle_gateway.usage import TokenCounts


class Family(Protocol):
    @property
    def stream_reader(self) -> Callable[[Observation], EventReader] | None:
        """The family's reader of stream events for the relay; None: the relay's own."""
        ...

    def forwarded_headers(self, client_headers: Mapping[str, str]) -> dict[str, str]:
        """The client headers that go upstream (and are signed); 400 for one that cannot."""
        ...

    def upstream_body(self, call: Call) -> tuple[bytes, bool]:
        """The bytes to sign and send, and whether the relay strips usage the client did not
        ask for (the gateway asked for it itself)."""
        ...

    def prefix_for(self, model: str) -> str:
        """The upstream path prefix for a model, e.g. `/v1`."""
        ...

    def retry_prefix(self, call: Call, status: int, content: bytes) -> str | None:
        """The prefix to retry on once, when this refusal says the model lives elsewhere."""
        ...

    def prefix_answered(self, call: Call) -> None:
        """The retry on `call.prefix` answered (< 400): remember it for the model. Only then,
        so a transient route error never sends later calls the wrong way first."""
        ...

    def usage(self, route: Route, answer: Mapping[str, Any]) -> TokenCounts | None:
        """The usage a whole (non-streamed) JSON answer reports; `InvalidUsage` when its numbers
        cannot be billed."""
        ...

    def rate_headers(self, rate: RateState, now: datetime) -> list[tuple[str, str]]:
        """The key's rate window as the family's clients read it."""
        ...

    def input_slots(self, route: Route, data: dict[str, Any]) -> list[Slot]:
        """Where the client's text sits in a request body (for the guardrail; `guard_text`)."""
        ...

    def output_slots(self, route: Route, answer: dict[str, Any]) -> list[Slot]:
        """Where the answer's text sits in a whole JSON answer."""
        ...

    def mark_filtered(self, route: Route, answer: dict[str, Any]) -> None:
        """Say in the answer that a guardrail replaced its text (finish or stop reason)."""
        ...
