"""Keys bound to Mantle projects, through the live door with the openai SDK's `project=`.

GIVEN a key bound to a project (`keys create --project proj_…`),
WHEN the client names that project, names none, or names another,
THEN the simulator receives the key's project in a signed `OpenAI-Project` header on every kind
of request (forced when the client sent none), another project is refused with 403
`project_not_permitted` before anything goes upstream, the usage item records the project, and a
key without a project forwards whatever the client sent, as before.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from mantle_gateway import simulator

MODEL = "openai.gpt-oss-120b"
MESSAGES: Any = [{"role": "user", "content": "hello"}]
PROJECT = "proj_finance01"


@pytest.fixture
def sdk(gateway):
    def make(key: str, project: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=gateway.url + "/openai/v1", api_key=key, project=project, max_retries=0
        )

    return make


def signed_project(seen: simulator.SeenRequest) -> str | None:
    """The `OpenAI-Project` the simulator received, asserting it was covered by the signature."""
    assert seen.signature_ok, seen.signature_error
    project = seen.headers.get("openai-project")
    if project is not None:
        signed = seen.headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
        assert "openai-project" in signed.split(";")
    return project


def test_the_keys_project_goes_up_signed_and_the_usage_item_records_it(
    sim, new_key, sdk, usage_items
) -> None:
    secret, record = new_key(project=PROJECT)

    answer = sdk(secret, project=PROJECT).chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=3
    )

    assert answer.choices[0].message.content
    (seen,) = sim.requests
    assert signed_project(seen) == PROJECT
    (item,) = usage_items(record.key_id)
    assert item["project"] == PROJECT


def test_a_client_that_names_no_project_is_given_the_keys_on_every_request(
    sim, new_key, sdk, usage_items
) -> None:
    secret, record = new_key(project=PROJECT)
    client = sdk(secret)  # no project: the SDK sends no OpenAI-Project header

    created = client.responses.create(model=MODEL, input="hi", max_output_tokens=4)
    client.responses.retrieve(created.id)
    list(client.responses.input_items.list(created.id))
    client.models.list()
    streamed = list(
        client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2, stream=True)
    )
    client.responses.delete(created.id)

    assert streamed
    assert [s.method + " " + s.path.split("/")[-1] for s in sim.requests] == [
        "POST responses",
        f"GET {created.id}",
        "GET input_items",
        "GET models",
        "POST completions",
        f"DELETE {created.id}",
    ]
    assert [signed_project(seen) for seen in sim.requests] == [PROJECT] * 6
    items = usage_items(record.key_id, count=2)
    assert sorted(i["api_surface"] for i in items) == ["chat_completions", "responses"]
    assert {i["project"] for i in items} == {PROJECT}


@pytest.mark.parametrize("other", ["proj_marketing02", "default"])
def test_another_project_is_refused_before_anything_goes_upstream(
    sim, new_key, sdk, usage_items, other
) -> None:
    secret, record = new_key(project=PROJECT, monthly_budget_usd=5)
    client = sdk(secret, project=other)

    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=3)
    with pytest.raises(openai.PermissionDeniedError):
        client.models.list()

    assert refused.value.status_code == 403
    error = refused.value.body
    assert isinstance(error, dict)
    assert (error["type"], error["code"], error["param"]) == (
        "permission_error",
        "project_not_permitted",
        "OpenAI-Project",
    )
    assert PROJECT in error["message"]
    assert sim.requests == []
    assert usage_items(record.key_id, timeout=0.3) == []


def test_a_key_without_a_project_forwards_the_clients_as_before(
    sim, new_key, sdk, usage_items
) -> None:
    secret, record = new_key()

    sdk(secret, project="proj_team7").chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=2
    )
    sdk(secret).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2)

    first, second = sim.requests
    assert signed_project(first) == "proj_team7"
    assert signed_project(second) is None
    items = usage_items(record.key_id, count=2)
    assert sorted(i.get("project", "-") for i in items) == ["-", "proj_team7"]
