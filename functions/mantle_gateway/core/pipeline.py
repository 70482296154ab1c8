"""The request path of DESIGN §1, one call per step, in order:

    route → (flag off ⇒ 404) → parse & validate body → authenticate key → authorize model
    → Mantle project → rate limit → budget → (stored response: owner check) → sign & forward
    → relay (stream or buffer) while extracting usage → write usage + add spend

Every refusing step raises a `GatewayError` before any upstream call; only `Gateway.handle`
turns it into an answer, shaped like the API the path belongs to (OpenAI's, or Anthropic's under
`/anthropic/`). The usage write happens when the door closes the answer, after the client has
its last byte. Steps live where they are named: `routes`, `body`, `auth`, `admission` (rate
limit, budget), `metering` (usage, owners); this module orders them and talks to the upstream.
Where the OpenAI and Anthropic APIs differ, it asks the route's `Family` (`openai_api`,
`anthropic_api`) instead of branching.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mantle_gateway.core import admission, auth, body, metering, projects, routes
from mantle_gateway.core.anthropic_api import AnthropicFamily
from mantle_gateway.core.call import Call
from mantle_gateway.core.family import Family
from mantle_gateway.core.guardrails import Guard, PendingInput
from mantle_gateway.core.openai_api import OpenAIFamily
from mantle_gateway.core.pricing import PriceTable
from mantle_gateway.errors import (
    GatewayError,
    InvalidRequestError,
    NotFoundError,
    ServiceUnavailableError,
    Shape,
    shape_for,
)
from mantle_gateway.messages import GatewayRequest, GatewayResponse
from mantle_gateway.observability import log_refusal, logger, metric
from mantle_gateway.store.dynamo import StoreError
from mantle_gateway.stream.relay import Observation, Relay
from mantle_gateway.upstream import routing, signing
from mantle_gateway.upstream.client import UpstreamClient
from mantle_gateway.usage import parse_upstream_json

if TYPE_CHECKING:
    import httpx

    from mantle_gateway.settings import Settings
    from mantle_gateway.store.keys import KeyRecord

JSON = "application/json"
_KEPT_ERROR_HEADERS = ("retry-after", "x-request-id", "x-amzn-requestid")


class Gateway:
    def __init__(
        self,
        *,
        settings: Settings,
        keys: auth.KeyCache,
        limits: admission.Limits,
        ledger: metering.LedgerWriter,
        owners: metering.Owners,
        upstream: UpstreamClient,
        signer: signing.Signer,
        prices: PriceTable,
        guard: Guard | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._keys = keys
        self._owners = owners
        self._guard = guard
        self._meter = metering.Meter(
            ledger=ledger,
            owners=owners,
            prices=prices,
            clock=clock,
            stamp=lambda record, call: guard.stamp(record, call.guard) if guard else record,
        )
        self._upstream = upstream
        self._signer = signer
        self._families: dict[str, Family] = {
            "openai": OpenAIFamily(routing.PrefixRouter(settings.route_rules)),
            "anthropic": AnthropicFamily(),
        }
        self._admission = admission.Admission(settings=settings, limits=limits, prices=prices)
        self._clock = clock

    def handle(self, request: GatewayRequest) -> GatewayResponse:
        request_id = request.request_id or uuid.uuid4().hex
        known: dict[str, str] = {}
        try:
            return self._handle(request, request_id, known)
        except GatewayError as err:
            log_refusal(
                err.status,
                err.code,
                request_id=request_id,
                key_id=known.get("key_id"),
                door=request.door,
            )
            return error_response(err, request_id, shape_for(request.path))
        except Exception:
            logger.exception("unhandled_error", extra={"request_id": request_id})
            failed = GatewayError("The gateway failed unexpectedly.")
            return error_response(failed, request_id, shape_for(request.path))

    def precheck(self, request: GatewayRequest) -> GatewayError | None:
        """The refusal the request's head decides alone (unknown path, wrong method, bad key),
        or None; the body is not looked at. The local door asks before reading a large body,
        so a client without a valid key cannot make it read megabytes first."""
        try:
            route = self._route(request)
            if route.kind != "health":
                auth.authenticate(
                    request.headers, self._keys, datetime.fromtimestamp(self._clock(), UTC)
                )
        except GatewayError as err:
            return err
        return None

    # -- the steps, in order ------------------------------------------------------------------

    def _handle(
        self, request: GatewayRequest, request_id: str, known: dict[str, str]
    ) -> GatewayResponse:
        started = self._clock()
        route = self._route(request)
        if route.kind == "health":
            return GatewayResponse(200, [("content-type", JSON)], b'{"status":"ok"}')
        family = self._families[route.family]
        parsed = self._validate_body(route, request)
        now = datetime.fromtimestamp(started, UTC)
        key = auth.identify(request.headers, self._keys)
        known["key_id"] = key.key_id  # for the refusal log line, from here on
        auth.check_usable(key, now)
        if parsed is not None:
            auth.authorize_model(key, parsed.model)
            self._check_chain(key, parsed)
        call = Call(request, request_id, started, now, route, key, parsed, rate=None, family=family)
        call.project = projects.project_for(key, request.path, request.headers)
        checking = self._guard.start_input(call) if self._guard is not None else None
        self._admission.admit(call)  # while the guardrail reads the input
        try:
            if checking is not None:
                self._check_input(call, checking)
            if route.owned_response:
                call.prefix = self._check_owner(call)
            elif parsed is not None:
                call.prefix = family.prefix_for(parsed.model)
            return self._forward(call)
        finally:
            if call.reservation is not None and not call.settles:
                self._admission.release(call)

    def _check_input(self, call: Call, checking: PendingInput) -> None:
        """The input check's verdict: blocked → billed for the guardrail only, and refused."""
        assert self._guard is not None
        self._guard.finish_input(call, checking)
        if call.guard is not None and call.guard.blocked:
            metric("GuardrailInputBlocked")
            self._meter.record_blocked(call)
            call.settles = True
            raise Guard.refusal(call)

    def _route(self, request: GatewayRequest) -> routes.Route:
        return routes.match(
            request.method,
            request.path,
            passthrough_enabled=self._settings.enable_openai_passthrough,
            anthropic_enabled=self._settings.enable_anthropic_passthrough,
        )

    def _validate_body(
        self, route: routes.Route, request: GatewayRequest
    ) -> body.ParsedBody | None:
        body.check_size(request.body, self._settings.max_request_bytes)
        return body.parse(request.body) if route.reads_body else None

    def _check_chain(self, key: KeyRecord, parsed: body.ParsedBody) -> None:
        """`previous_response_id` reads a stored conversation: only its owner may chain on it."""
        previous = parsed.data.get("previous_response_id")
        if previous is None:
            return
        if not isinstance(previous, str) or not routes.RESPONSE_ID.fullmatch(previous):
            raise InvalidRequestError(
                "previous_response_id must be a response id.", param="previous_response_id"
            )
        try:
            owner = self._owners.get(previous)
        except StoreError as exc:
            raise ServiceUnavailableError("The response store is unavailable; try again.") from exc
        if owner is None or owner.key_id != key.key_id:
            raise InvalidRequestError(
                f"Previous response with id '{previous}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )

    def _check_owner(self, call: Call) -> str:
        """Only the key that created a stored response reaches it; others get the plain 404."""
        response_id = call.route.response_id or ""
        try:
            owner = self._owners.get(response_id)
        except StoreError as exc:
            raise ServiceUnavailableError("The response store is unavailable; try again.") from exc
        if owner is None or owner.key_id != call.key.key_id:
            raise NotFoundError(f"No response found with id '{response_id}'.")
        call.owner = owner
        return owner.prefix

    def _forward(self, call: Call) -> GatewayResponse:
        payload, strip_usage = call.family.upstream_body(call)
        response = self._send(call, payload)
        if response.status_code >= 400:
            content = self._upstream.read_all(response)
            retry = call.family.retry_prefix(call, response.status_code, content)
            if retry is None:
                return self._upstream_refused(call, response, content)
            call.prefix = retry  # the model lives under the other prefix: one more try
            response = self._send(call, payload)
            if response.status_code >= 400:
                content = self._upstream.read_all(response)
                return self._upstream_refused(call, response, content)
            call.family.prefix_answered(call)
        if not call.route.billable:
            return self._passthrough(call, response)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return self._relay(call, response, strip_usage)
        return self._buffered(call, response)

    # -- upstream ------------------------------------------------------------------------------

    def _send(self, call: Call, payload: bytes) -> httpx.Response:
        request = call.request
        url = self._upstream.base_url + call.prefix + call.route.upstream_path
        query = signing.forwarded_query(request.query) if request.query else ""
        if query:
            url += "?" + query
        headers = call.family.forwarded_headers(request.headers)
        projects.name_upstream(headers, call.project)
        if payload or request.method == "POST":
            headers["content-type"] = JSON
        signed = self._signer.sign(request.method, url, headers, payload)
        return self._upstream.open(
            request.method, url, signed, payload, request.deadline, request.max_silence
        )

    def _upstream_refused(
        self, call: Call, response: httpx.Response, content: bytes
    ) -> GatewayResponse:
        """Same status and body back to the client; not billed, but logged."""
        logger.info(
            "upstream_refused",
            extra={
                "request_id": call.request_id,
                "key_id": call.key.key_id,
                "status": response.status_code,
                "route": call.route.kind,
            },
        )
        headers = self._answer_headers(call, response, kept=_KEPT_ERROR_HEADERS)
        return GatewayResponse(response.status_code, headers, content)

    def _answer_headers(
        self, call: Call, response: httpx.Response, kept: tuple[str, ...] = ("x-request-id",)
    ) -> list[tuple[str, str]]:
        """The upstream's content type and `kept` headers, then the gateway's own."""
        headers = [("content-type", response.headers.get("content-type", JSON))]
        headers += [(name, response.headers[name]) for name in kept if name in response.headers]
        return headers + call.extra_headers

    # -- relay and usage -----------------------------------------------------------------------

    def _relay(self, call: Call, response: httpx.Response, strip_usage: bool) -> GatewayResponse:
        assert call.route.surface is not None
        relay = Relay(
            self._upstream.chunks(response),
            surface=call.route.surface,
            reader=call.family.stream_reader,
            strip_usage=strip_usage,
            on_response_id=lambda response_id: self._meter.remember_owner(call, response_id),
            on_finish=lambda observed: self._meter.record(call, observed, stream=True),
            deadline=call.request.deadline,
            clock=self._clock,
        )
        headers = [*self._answer_headers(call, response), ("cache-control", "no-cache")]
        call.settles = True
        if self._guard is not None and call.guard is not None:
            return GatewayResponse(
                response.status_code, headers, self._guard.guarded_stream(call, relay)
            )
        return GatewayResponse(response.status_code, headers, relay)

    def _buffered(self, call: Call, response: httpx.Response) -> GatewayResponse:
        content = self._upstream.read_all(response)
        answer = parse_upstream_json(content) or {}
        observed = self._observe(call, answer, content)
        response_id = answer.get("id")
        call.settles = True
        if self._guard is not None and call.guard is not None:
            try:
                content = self._guard.check_body(call, answer, content)
            except GatewayError as err:  # the guardrail failed, closed: the tokens are spent
                refused = error_response(err, call.request_id, shape_for(call.request.path))
                refused.headers += call.rate_headers
                refused.on_close = lambda: self._meter.record(call, observed, stream=False)
                return refused
        headers = self._answer_headers(call, response)
        if call.route.kind == "responses" and isinstance(response_id, str):
            observed.response_id = response_id
            if metering.awaits_background_work(answer) and self._meter.defer(call, response_id):
                return GatewayResponse(response.status_code, headers, content)
            self._meter.remember_owner(call, response_id)
        return GatewayResponse(
            response.status_code,
            headers,
            content,
            on_close=lambda: self._meter.record(call, observed, stream=False),
        )

    @staticmethod
    def _observe(call: Call, answer: dict[str, Any], content: bytes) -> Observation:
        """What a whole JSON answer used, read the way the call's API family reports usage."""
        return metering.observe(answer, len(content), lambda a: call.family.usage(call.route, a))

    def _passthrough(self, call: Call, response: httpx.Response) -> GatewayResponse:
        """CRUD and /models: relayed as they are; a background response its owner reads
        finished (`GET /responses/{id}`, plain or `?stream=true`) is billed then, once."""
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            relay = Relay(
                self._upstream.chunks(response),
                surface="responses",
                on_finish=lambda observed: self._meter.bill_background(call, observed),
                deadline=call.request.deadline,
                clock=self._clock,
            )
            headers = [*self._answer_headers(call, response), ("cache-control", "no-cache")]
            return GatewayResponse(response.status_code, headers, relay)
        content = self._upstream.read_all(response)
        on_close = None
        if call.owner is not None and call.owner.pending is not None:
            observed = self._observe(call, parse_upstream_json(content) or {}, content)
            on_close = lambda: self._meter.bill_background(call, observed)  # noqa: E731
        return GatewayResponse(
            response.status_code, self._answer_headers(call, response), content, on_close
        )


def error_response(err: GatewayError, request_id: str, shape: Shape = "openai") -> GatewayResponse:
    headers = [("content-type", JSON), ("x-gateway-request-id", request_id)]
    # A refusal that already carries the call's headers (budget) must not repeat the id.
    headers += [(n, v) for n, v in err.answer_headers(shape) if n != "x-gateway-request-id"]
    return GatewayResponse(err.status, headers, err.body(shape))
