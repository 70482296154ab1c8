"""Errors render the OpenAI envelope with DESIGN §8's status, type and code."""

import json

import pytest

from mantle_gateway import errors


@pytest.mark.parametrize(
    ("cls", "status", "type_", "code"),
    [
        (errors.InvalidRequestError, 400, "invalid_request_error", "invalid_request"),
        (errors.RequestTooLargeError, 413, "invalid_request_error", "request_too_large"),
        (errors.AuthenticationError, 401, "authentication_error", "invalid_api_key"),
        (errors.PermissionDeniedError, 403, "permission_error", "model_not_permitted"),
        (errors.ModelNotPricedError, 403, "permission_error", "model_not_priced"),
        (errors.ProjectNotPermittedError, 403, "permission_error", "project_not_permitted"),
        (errors.NotFoundError, 404, "not_found", "not_found"),
        (errors.RateLimitError, 429, "rate_limit_error", "rate_limit_exceeded"),
        (errors.BudgetExceededError, 429, "insufficient_quota", "budget_exceeded"),
        (errors.UpstreamError, 502, "upstream_error", "upstream_unreachable"),
        (errors.UpstreamTimeoutError, 504, "upstream_error", "upstream_timeout"),
        (errors.ServiceUnavailableError, 503, "api_error", "service_unavailable"),
    ],
)
def test_error_envelope(cls: type[errors.GatewayError], status: int, type_: str, code: str) -> None:
    err = cls("something went wrong", param="model")
    assert err.status == status
    body = json.loads(err.body())
    assert body == {
        "error": {"message": "something went wrong", "type": type_, "code": code, "param": "model"}
    }


@pytest.mark.parametrize(
    ("cls", "type_"),
    [
        (errors.InvalidRequestError, "invalid_request_error"),
        (errors.RequestTooLargeError, "request_too_large"),
        (errors.AuthenticationError, "authentication_error"),
        (errors.PermissionDeniedError, "permission_error"),
        (errors.ModelNotPricedError, "permission_error"),
        (errors.ProjectNotPermittedError, "permission_error"),
        (errors.NotFoundError, "not_found_error"),
        (errors.MethodNotAllowedError, "invalid_request_error"),
        (errors.RateLimitError, "rate_limit_error"),
        (errors.BudgetExceededError, "rate_limit_error"),
        (errors.UpstreamError, "api_error"),
        (errors.UpstreamTimeoutError, "api_error"),
        (errors.ServiceUnavailableError, "overloaded_error"),
        (errors.GatewayError, "api_error"),
    ],
)
def test_anthropic_envelope(cls: type[errors.GatewayError], type_: str) -> None:
    body = json.loads(cls("no", param="model").body("anthropic"))
    assert body == {"type": "error", "error": {"type": type_, "message": "no"}}


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/anthropic/v1/messages", "anthropic"),
        ("/anthropic", "anthropic"),
        ("/anthropic/", "anthropic"),
        ("/anthropicx/v1/messages", "openai"),
        ("/openai/v1/chat/completions", "openai"),
        ("/", "openai"),
    ],
)
def test_shape_follows_the_path(path: str, shape: str) -> None:
    assert errors.shape_for(path) == shape


@pytest.mark.parametrize(
    ("err", "should_retry"),
    [
        (errors.AuthenticationError("no"), False),
        (errors.PermissionDeniedError("no"), False),
        (errors.InvalidRequestError("no"), False),
        (errors.RequestTooLargeError("no"), False),
        (errors.NotFoundError("no"), False),
        (errors.MethodNotAllowedError("no", headers={"allow": "POST"}), False),
        (errors.BudgetExceededError("no"), False),
        (errors.RateLimitError("slow", headers={"retry-after": "3"}), True),
        (errors.UpstreamError("down"), True),
        (errors.ServiceUnavailableError("busy"), True),
    ],
)
def test_anthropic_refusals_that_no_retry_fixes_say_so(
    err: errors.GatewayError, should_retry: bool
) -> None:
    anthropic_headers = dict(err.answer_headers("anthropic"))
    assert ("x-should-retry" not in anthropic_headers) is should_retry
    if not should_retry:
        assert anthropic_headers["x-should-retry"] == "false"
    assert dict(err.answer_headers("openai")) == err.headers  # OpenAI answers are unchanged
    assert err.headers.items() <= anthropic_headers.items()
