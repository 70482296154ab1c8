"""Routing: both prefixes, Mantle's per-model prefix rule, 404/405, query strings kept."""

from __future__ import annotations

import httpx
import pytest

from mantle_gateway.simulator import DEFAULT_MODEL_PREFIXES, Simulator, prefix_for
from mantle_gateway.simulator.routes import MethodNotAllowed, Route, match


@pytest.mark.parametrize(
    ("model", "prefix"),
    [
        ("openai.gpt-oss-120b", "/v1"),
        ("openai.gpt-oss-20b", "/v1"),
        ("mistral.mistral-large-3-675b-instruct", "/v1"),
        ("openai.gpt-5.5", "/openai/v1"),
        ("openai.gpt-6", "/openai/v1"),
        ("google.gemma-4-31b", "/openai/v1"),
        ("xai.grok-4.3", "/openai/v1"),
    ],
)
def test_default_prefixes(model: str, prefix: str) -> None:
    assert prefix_for(model, DEFAULT_MODEL_PREFIXES) == prefix


def test_exact_entries_beat_globs_and_later_globs_win() -> None:
    table = {"acme.*": "/openai/v1", "acme.special": "/v1", "acme.s*": "/v1"}
    assert prefix_for("acme.special", table) == "/v1"
    assert prefix_for("acme.other", table) == "/openai/v1"
    assert prefix_for("acme.second", table) == "/v1"


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1/chat/completions", Route("chat", "/v1")),
        ("POST", "/openai/v1/responses", Route("create_response", "/openai/v1")),
        ("GET", "/v1/responses/resp_1", Route("get_response", "/v1", "resp_1")),
        ("DELETE", "/v1/responses/resp_1", Route("delete_response", "/v1", "resp_1")),
        ("POST", "/v1/responses/resp_1/cancel", Route("cancel_response", "/v1", "resp_1")),
        ("GET", "/openai/v1/responses/r/input_items", Route("input_items", "/openai/v1", "r")),
        ("GET", "/openai/v1/models", Route("models", "/openai/v1")),
        ("GET", "/v2/models", None),
        ("GET", "/v1/embeddings", None),
        ("GET", "/v1/responses/", None),
        ("GET", "/health", None),
    ],
)
def test_match(method: str, path: str, expected: Route | None) -> None:
    assert match(method, path) == expected


def test_wrong_method_lists_the_allowed_ones() -> None:
    with pytest.raises(MethodNotAllowed) as raised:
        match("PUT", "/v1/responses/resp_1")
    assert raised.value.allowed == ["DELETE", "GET"]


@pytest.mark.parametrize(
    ("prefix", "model"),
    [("/v1", "openai.gpt-oss-120b"), ("/openai/v1", "openai.gpt-5.5")],
)
@pytest.mark.parametrize("operation", ["/chat/completions", "/responses"])
def test_each_model_is_served_on_its_prefix(
    client: httpx.Client, prefix: str, model: str, operation: str
) -> None:
    response = client.post(prefix + operation, json={"model": model, "input": "x"})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == model


@pytest.mark.parametrize(
    ("prefix", "model"),
    [("/openai/v1", "openai.gpt-oss-120b"), ("/v1", "openai.gpt-5.5")],
)
@pytest.mark.parametrize("operation", ["/chat/completions", "/responses"])
def test_wrong_prefix_is_refused_like_mantle(
    client: httpx.Client, prefix: str, model: str, operation: str
) -> None:
    response = client.post(prefix + operation, json={"model": model, "input": "x"})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "validation_error",
            "message": f"model `{model}` isn't supported on this route",
            "param": None,
            "type": "invalid_request_error",
        }
    }


def test_prefix_table_is_overridable_per_instance(sim: Simulator, client: httpx.Client) -> None:
    body = {"model": "acme.special", "messages": []}
    assert client.post("/openai/v1/chat/completions", json=body).status_code == 400
    sim.model_prefixes["acme.special"] = "/openai/v1"
    assert client.post("/openai/v1/chat/completions", json=body).status_code == 200
    assert client.post("/v1/chat/completions", json=body).status_code == 400


def test_models_are_listed_on_both_prefixes(client: httpx.Client) -> None:
    for prefix in ("/v1", "/openai/v1"):
        listing = client.get(prefix + "/models").json()
        assert listing["object"] == "list"
        ids = {model["id"] for model in listing["data"]}
        assert {
            "openai.gpt-oss-120b",
            "openai.gpt-oss-20b",
            "openai.gpt-5.5",
            "mistral.mistral-large-3-675b-instruct",
        } <= ids
        first = listing["data"][0]
        assert first["object"] == "model"
        assert first["owned_by"] == "openai"
        assert isinstance(first["created"], int)


def test_unknown_path_is_404_openai_shaped(client: httpx.Client) -> None:
    response = client.get("/v1/embeddings")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert error["type"] == "invalid_request_error"
    assert "/v1/embeddings" in error["message"]


def test_wrong_method_is_405(client: httpx.Client) -> None:
    response = client.post("/v1/models")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_query_string_and_path_are_recorded(sim: Simulator, client: httpx.Client) -> None:
    client.get("/openai/v1/models?limit=5&after=abc")
    seen = sim.requests[-1]
    assert (seen.method, seen.path, seen.query) == ("GET", "/openai/v1/models", "limit=5&after=abc")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "could not parse the JSON body"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"messages": []}', "you must provide a model parameter"),
        (b'{"model": "openai.gpt-oss-20b", "max_tokens": "8"}', "max_tokens must be an integer"),
        (b'{"model": "openai.gpt-oss-20b", "max_tokens": 0}', "max_tokens must be between"),
    ],
)
def test_bad_bodies_are_400(client: httpx.Client, body: bytes, fragment: str) -> None:
    response = client.post(
        "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert fragment in error["message"]
