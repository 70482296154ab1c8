"""What one admitted request carries from step to step of the pipeline, and into metering."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mantle_gateway.messages import GatewayRequest

if TYPE_CHECKING:
    from mantle_gateway.core import body, routes
    from mantle_gateway.core.family import Family
    from mantle_gateway.store.keys import KeyRecord
    from mantle_gateway.store.limits import RateState, Reservation
    from mantle_gateway.store.responses import ResponseOwner


@dataclass(slots=True)
class Call:
    """What one admitted request carries from step to step."""

    request: GatewayRequest
    request_id: str
    started: float
    now: datetime
    route: routes.Route
    key: KeyRecord
    parsed: body.ParsedBody | None
    rate: RateState | None
    family: Family
    """The API family the route belongs to: asked wherever OpenAI and Anthropic differ."""
    prefix: str = "/v1"
    owner: ResponseOwner | None = None
    """The owner record of the stored response this request names, once checked."""
    reservation: Reservation | None = None
    """Tokens and budget reserved for this request; settled by the ledger or released if the
    request is not billed."""
    settles: bool = False
    """True once the answer will record usage (which settles the reservation)."""
    project: str | None = None
    """The Mantle project named upstream (`core/projects.py`); None: the account's default."""

    @property
    def month(self) -> str:
        return self.now.strftime("%Y-%m")

    @property
    def rate_headers(self) -> list[tuple[str, str]]:
        """The key's rate window, spelled as the client's API family spells it."""
        return self.family.rate_headers(self.rate, self.now) if self.rate else []

    @property
    def extra_headers(self) -> list[tuple[str, str]]:
        return [("x-gateway-request-id", self.request_id), *self.rate_headers]
