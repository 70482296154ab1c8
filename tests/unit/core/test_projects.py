"""The Mantle project a request names upstream: the key's, the client's, or none."""

from __future__ import annotations

import pytest

from mantle_gateway.core.projects import PROJECT_ID, name_upstream, project_for
from mantle_gateway.errors import ProjectNotPermittedError
from mantle_gateway.store.keys import KeyRecord

BOUND = KeyRecord(key_id="key_1", digest="d" * 64, name="bound", project="proj_abc")
FREE = KeyRecord(key_id="key_2", digest="e" * 64, name="free")
CHAT = "/openai/v1/chat/completions"


def test_a_bound_key_names_its_project_whether_or_not_the_client_did() -> None:
    assert project_for(BOUND, CHAT, {}) == "proj_abc"
    assert project_for(BOUND, "/v1/models", {"openai-project": "proj_abc"}) == "proj_abc"
    assert project_for(BOUND, CHAT, {"openai-project": "  proj_abc "}) == "proj_abc"


@pytest.mark.parametrize("other", ["proj_xyz", "default", "PROJ_ABC", "proj_abc2"])
def test_a_bound_key_refuses_any_other_project(other: str) -> None:
    with pytest.raises(ProjectNotPermittedError) as refused:
        project_for(BOUND, CHAT, {"openai-project": other})
    assert (refused.value.status, refused.value.code) == (403, "project_not_permitted")
    assert refused.value.param == "OpenAI-Project"


def test_a_free_key_passes_on_what_the_client_sent() -> None:
    assert project_for(FREE, CHAT, {"openai-project": "proj_team"}) == "proj_team"
    assert project_for(FREE, CHAT, {}) is None
    assert project_for(FREE, CHAT, {"openai-project": "   "}) is None


def test_the_anthropic_surface_takes_no_project() -> None:
    assert project_for(BOUND, "/anthropic/v1/messages", {}) is None
    assert project_for(BOUND, "/anthropic/v1/messages", {"openai-project": "proj_x"}) is None


def test_the_header_is_set_only_when_there_is_a_project() -> None:
    headers = {"openai-project": "proj_abc"}
    name_upstream(headers, "proj_abc")
    assert headers == {"openai-project": "proj_abc"}
    empty: dict[str, str] = {}
    name_upstream(empty, None)
    assert empty == {}


@pytest.mark.parametrize("good", ["default", "proj_a", "proj_0123ABCxyz"])
def test_project_ids_follow_mantles_pattern(good: str) -> None:
    assert PROJECT_ID.fullmatch(good)


@pytest.mark.parametrize("bad", ["", "proj_", "proj-abc", "project_abc", "Default", "proj_a b"])
def test_malformed_project_ids_do_not_match(bad: str) -> None:
    assert not PROJECT_ID.fullmatch(bad)
