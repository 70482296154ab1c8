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


@pytest.mark.parametrize(
    ("rest", "kind"), [("/messages", "messages"), ("/messages/count_tokens", "count_tokens")]
)
def test_anthropic_routes(rest: str, kind: str) -> None:
    route = routes.match("POST", "/anthropic/v1" + rest, passthrough_enabled=False)
    assert (route.kind, route.family, route.upstream_path) == (kind, "anthropic", rest)
    assert route.reads_body


def test_messages_bill_to_their_own_surface_and_count_tokens_is_free() -> None:
    messages = routes.match("POST", "/anthropic/v1/messages", passthrough_enabled=True)
    assert messages.billable and messages.surface == "messages"
    count = routes.match("POST", "/anthropic/v1/messages/count_tokens", passthrough_enabled=True)
    assert not count.billable and count.surface is None


@pytest.mark.parametrize(
    "path",
    [
        "/anthropic/v1/complete",
        "/anthropic/v1/chat/completions",
        "/anthropic/v2/messages",
        "/anthropic/messages",
        "/anthropic",
        "/v1/messages",
    ],
)
def test_anything_else_under_anthropic_is_404(path: str) -> None:
    with pytest.raises(NotFoundError):
        routes.match("POST", path, passthrough_enabled=True)


def test_anthropic_wrong_method_is_405_with_allow() -> None:
    with pytest.raises(MethodNotAllowedError) as info:
        routes.match("GET", "/anthropic/v1/messages", passthrough_enabled=True)
    assert info.value.headers["allow"] == "POST"


def test_each_family_has_its_own_flag() -> None:
    with pytest.raises(NotFoundError):
        routes.match(
            "POST", "/anthropic/v1/messages", passthrough_enabled=True, anthropic_enabled=False
        )
    with pytest.raises(NotFoundError):  # 404, not 405: a hidden path does not exist at all
        routes.match(
            "GET", "/anthropic/v1/messages", passthrough_enabled=True, anthropic_enabled=False
        )
    chat = routes.match(
        "POST", "/v1/chat/completions", passthrough_enabled=True, anthropic_enabled=False
    )
    assert chat.family == "openai"
