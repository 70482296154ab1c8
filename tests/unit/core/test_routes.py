"""Every endpoint of DESIGN §3 under both prefixes; 404, 405 and the passthrough flag."""

import pytest

from mantle_gateway.core import routes
from mantle_gateway.errors import MethodNotAllowedError, NotFoundError

CASES = [
    ("POST", "/chat/completions", "chat", None),
    ("POST", "/responses", "responses", None),
    ("GET", "/responses/resp_123", "response_get", "resp_123"),
    ("DELETE", "/responses/resp_123", "response_delete", "resp_123"),
    ("POST", "/responses/resp_123/cancel", "response_cancel", "resp_123"),
    ("GET", "/responses/resp_123/input_items", "input_items", "resp_123"),
    ("GET", "/models", "models", None),
]


@pytest.mark.parametrize("prefix", ["/openai/v1", "/v1"])
@pytest.mark.parametrize(("method", "rest", "kind", "response_id"), CASES)
def test_known_routes(
    prefix: str, method: str, rest: str, kind: str, response_id: str | None
) -> None:
    route = routes.match(method, prefix + rest, passthrough_enabled=True)
    assert route.kind == kind
    assert route.upstream_path == rest
    assert route.response_id == response_id


@pytest.mark.parametrize(("method", "rest", "kind", "response_id"), CASES)
def test_flag_off_hides_every_passthrough_path(
    method: str, rest: str, kind: str, response_id: str | None
) -> None:
    with pytest.raises(NotFoundError):
        routes.match(method, "/openai/v1" + rest, passthrough_enabled=False)


def test_health_needs_no_flag() -> None:
    assert routes.match("GET", "/health", passthrough_enabled=False).kind == "health"


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/openai/v2/chat/completions",
        "/v1/embeddings",
        "/v1/responses/../../etc",
        "/v1/responses/a/b",
    ],
)
def test_unknown_paths_are_404(path: str) -> None:
    with pytest.raises(NotFoundError):
        routes.match("GET", path, passthrough_enabled=True)


def test_wrong_method_is_405_with_allow() -> None:
    with pytest.raises(MethodNotAllowedError) as info:
        routes.match("GET", "/v1/chat/completions", passthrough_enabled=True)
    assert info.value.status == 405
    assert info.value.headers["allow"] == "POST"


def test_billing_attributes() -> None:
    chat = routes.match("POST", "/v1/chat/completions", passthrough_enabled=True)
    assert chat.billable and chat.surface == "chat_completions"
    models = routes.match("GET", "/v1/models", passthrough_enabled=True)
    assert not models.billable and models.surface is None
