"""Every refusal the gateway can give, in the shape of the API the client speaks (DESIGN §8).

    class                        status  OpenAI type / code           Anthropic type
    GatewayError                  500     api_error / internal_error     api_error
    ├── InvalidRequestError       400     invalid_request_error / invalid_request
    │   │                                                              invalid_request_error
    │   ├── RequestTooLargeError  413     … / request_too_large          request_too_large
    │   ├── RequestTimeoutError   408     … / request_timeout            invalid_request_error
    │   ├── LengthRequiredError   411     … / length_required            invalid_request_error
    │   ├── UriTooLongError       414     … / uri_too_long               invalid_request_error
    │   ├── HeadersTooLargeError  431     … / headers_too_large          invalid_request_error
    │   └── HttpVersionError      505     … / http_version_not_supported invalid_request_error
    ├── AuthenticationError       401     authentication_error / invalid_api_key
    │                                                                  authentication_error
    ├── PermissionDeniedError     403     permission_error / model_not_permitted
    │   │                                                              permission_error
    │   ├── ModelNotPricedError   403     … / model_not_priced           permission_error
    │   └── ProjectNotPermittedError 403  … / project_not_permitted      permission_error
    ├── NotFoundError             404     not_found / not_found          not_found_error
    ├── MethodNotAllowedError     405     invalid_request_error / method_not_allowed
    │                                                                  invalid_request_error
    ├── RateLimitError            429     rate_limit_error / rate_limit_exceeded
    │                                                                  rate_limit_error
    ├── BudgetExceededError       429     insufficient_quota / budget_exceeded
    │                                                                  rate_limit_error
    ├── UpstreamError             502     upstream_error / upstream_unreachable
    │   │                                                              api_error
    │   └── UpstreamTimeoutError  504     upstream_error / upstream_timeout
    │                                                                  api_error
    └── ServiceUnavailableError   503     api_error / service_unavailable
                                                                       overloaded_error

408, 411, 414, 431 and 505 are the local door's own, for what never reaches the core (how the
request is framed, how long it takes to arrive); 505 is a 5xx status for a client's choice, as
HTTP defines it.

OpenAI: `{"error": {"message", "type", "code", "param"}}`. Anthropic (every path under
`/anthropic/`): `{"type": "error", "error": {"type", "message"}}`; Anthropic's types carry no
code, so the message says which limit refused. An Anthropic-shaped refusal that no retry can
fix (every 4xx but the rate limit) also says `x-should-retry: false`, the header Anthropic's
SDKs obey: without it Claude Code retries a 401 with backoff for minutes instead of failing.
Only `core/pipeline.py` and the doors turn these into answers, through `body(shape)` and
`answer_headers(shape)`. Messages are written by us, never copied from an exception
of a library, so no internal detail or secret reaches a client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

Shape = Literal["openai", "anthropic"]
ANTHROPIC_PREFIX = "/anthropic"


def shape_for(path: str) -> Shape:
    """Which error shape a path's clients read: Anthropic's under `/anthropic/`, else OpenAI's."""
    if path == ANTHROPIC_PREFIX or path.startswith(ANTHROPIC_PREFIX + "/"):
        return "anthropic"
    return "openai"


class ConfigError(Exception):
    """Bad configuration: the message is one line that names the variable."""


class GatewayError(Exception):
    status = 500
    type = "api_error"
    code: str | None = "internal_error"
    anthropic_type = "api_error"
    retryable = True
    """False when the same request can only be refused again (a client's mistake, a spent
    budget); true for rate limits and the gateway's or the upstream's failures."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers: dict[str, str] = dict(headers or {})

    def answer_headers(self, shape: Shape = "openai") -> list[tuple[str, str]]:
        """The refusal's own headers (`allow`, `retry-after`, rate limits) for this shape."""
        headers = list(self.headers.items())
        if shape == "anthropic" and not self.retryable:
            headers.append(("x-should-retry", "false"))
        return headers

    def body(self, shape: Shape = "openai") -> bytes:
        if shape == "anthropic":
            return anthropic_error_body(self.message, self.anthropic_type)
        return error_body(self.message, self.type, self.code, self.param)


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    """The OpenAI error envelope, as bytes ready to send."""
    payload = {"error": {"message": message, "type": type_, "code": code, "param": param}}
    return json.dumps(payload, separators=(",", ":")).encode()


def anthropic_error_body(message: str, type_: str) -> bytes:
    """Anthropic's error envelope, as bytes ready to send."""
    payload = {"type": "error", "error": {"type": type_, "message": message}}
    return json.dumps(payload, separators=(",", ":")).encode()


class InvalidRequestError(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"
    anthropic_type = "invalid_request_error"
    retryable = False


class RequestTooLargeError(InvalidRequestError):
    status = 413
    code = "request_too_large"
    anthropic_type = "request_too_large"


class RequestTimeoutError(InvalidRequestError):
    status = 408
    code = "request_timeout"


class LengthRequiredError(InvalidRequestError):
    status = 411
    code = "length_required"


class UriTooLongError(InvalidRequestError):
    status = 414
    code = "uri_too_long"


class HeadersTooLargeError(InvalidRequestError):
    status = 431
    code = "headers_too_large"


class HttpVersionError(InvalidRequestError):
    status = 505
    code = "http_version_not_supported"


class AuthenticationError(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"
    anthropic_type = "authentication_error"
    retryable = False


class PermissionDeniedError(GatewayError):
    status = 403
    type = "permission_error"
    code = "model_not_permitted"
    anthropic_type = "permission_error"
    retryable = False


class ModelNotPricedError(PermissionDeniedError):
    """A key with a monthly budget asked for a model the gateway has no price for: its cost could
    not be reserved nor charged, so the budget could not hold (fail closed)."""

    code = "model_not_priced"

    @classmethod
    def of(cls, model: str, key_id: str) -> ModelNotPricedError:
        return cls(
            f"Model {model} has no price in this gateway and key {key_id} has a monthly budget; "
            "use a priced model, or have the operator price it (PRICES_JSON).",
            param="model",
        )


class ProjectNotPermittedError(PermissionDeniedError):
    """The client named a Mantle project (`OpenAI-Project`) other than the one its key is bound
    to: the key's project is what AWS bills, so another one is refused rather than replaced."""

    code = "project_not_permitted"

    @classmethod
    def of(cls, key_id: str, project: str) -> ProjectNotPermittedError:
        return cls(
            f"API key {key_id} is bound to Mantle project {project}; send that OpenAI-Project "
            "header or none.",
            param="OpenAI-Project",
        )


class NotFoundError(GatewayError):
    status = 404
    type = "not_found"
    code = "not_found"
    anthropic_type = "not_found_error"
    retryable = False


class MethodNotAllowedError(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"
    anthropic_type = "invalid_request_error"
    retryable = False


class RateLimitError(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    anthropic_type = "rate_limit_error"


class BudgetExceededError(GatewayError):
    status = 429
    type = "insufficient_quota"
    code = "budget_exceeded"
    anthropic_type = "rate_limit_error"
    retryable = False


class UpstreamError(GatewayError):
    status = 502
    type = "upstream_error"
    code = "upstream_unreachable"


class UpstreamTimeoutError(UpstreamError):
    status = 504
    code = "upstream_timeout"


class ServiceUnavailableError(GatewayError):
    status = 503
    type = "api_error"
    code = "service_unavailable"
    anthropic_type = "overloaded_error"
