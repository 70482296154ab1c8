"""Every refusal the gateway can give, as OpenAI-shaped errors (DESIGN §8 in one file).

    GatewayError                      status  type / code
    ├── InvalidRequestError           400     invalid_request_error / invalid_request
    │   └── RequestTooLargeError      413     invalid_request_error / request_too_large
    ├── AuthenticationError           401     authentication_error / invalid_api_key
    ├── PermissionDeniedError         403     permission_error / model_not_permitted
    ├── NotFoundError                 404     not_found / not_found
    ├── MethodNotAllowedError         405     invalid_request_error / method_not_allowed
    ├── RateLimitError                429     rate_limit_error / rate_limit_exceeded
    ├── BudgetExceededError           429     insufficient_quota / budget_exceeded
    ├── UpstreamError                 502     upstream_error / upstream_unreachable
    │   └── UpstreamTimeoutError      504     upstream_error / upstream_timeout
    └── ServiceUnavailableError       503     api_error / service_unavailable

Only `core/pipeline.py` turns these into answers. Messages are written by us, never copied from
an exception of a library, so no internal detail or secret reaches a client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping


class ConfigError(Exception):
    """Bad configuration: the message is one line that names the variable."""


class GatewayError(Exception):
    status = 500
    type = "api_error"
    code: str | None = "internal_error"

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

    def body(self) -> bytes:
        return error_body(self.message, self.type, self.code, self.param)


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    """The OpenAI error envelope, as bytes ready to send."""
    payload = {"error": {"message": message, "type": type_, "code": code, "param": param}}
    return json.dumps(payload, separators=(",", ":")).encode()


class InvalidRequestError(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class RequestTooLargeError(InvalidRequestError):
    status = 413
    code = "request_too_large"


class AuthenticationError(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status = 403
    type = "permission_error"
    code = "model_not_permitted"


class NotFoundError(GatewayError):
    status = 404
    type = "not_found"
    code = "not_found"


class MethodNotAllowedError(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class RateLimitError(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class BudgetExceededError(GatewayError):
    status = 429
    type = "insufficient_quota"
    code = "budget_exceeded"


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
