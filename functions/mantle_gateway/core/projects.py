"""Which Mantle project a request bills to: the key's own, else the one the client named.

AWS attributes Mantle usage (Cost Explorer, CUR tags, the `AWS/BedrockMantle` metrics) to a
project named by the `OpenAI-Project: proj_…` header, which the OpenAI SDKs send for
`OpenAI(project=…)`; a request without one goes to the account's `default` project (Bedrock
user guide, "Projects" under cost management: cost-mgmt-projects). A key bound to a project
names it on every upstream request, CRUD and `/models` included, so the owner of the key cannot
bill anything elsewhere: a client header naming another project is refused (403), the same one
is fine, none is filled in. A key without a project keeps the client's header as it came.

Projects apply to the OpenAI-compatible APIs (Responses, Chat Completions) only: the projects
page says they can be used only with the OpenAI-compatible APIs on bedrock-mantle, and Mantle's
Anthropic Messages API offers Anthropic-style workspaces (`anthropic-workspace-id`) instead. So
under `/anthropic/` a key's project does not apply and no `OpenAI-Project` is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mantle_gateway.errors import ProjectNotPermittedError, shape_for

if TYPE_CHECKING:
    from mantle_gateway.store.keys import KeyRecord

HEADER = "openai-project"
PROJECT_ID = re.compile(r"proj_[A-Za-z0-9]+|default")
"""Mantle's project id pattern (API reference, `projectId`): `proj_…`, or the account's default."""


def project_for(key: KeyRecord, path: str, headers: Mapping[str, str]) -> str | None:
    """The project this request names upstream (None: the account's default, or not applicable);
    raises ProjectNotPermittedError when the client names another project than its key's."""
    if shape_for(path) == "anthropic":
        return None
    sent = " ".join(headers.get(HEADER, "").split()) or None
    if key.project is None:
        return sent
    if sent is not None and sent != key.project:
        raise ProjectNotPermittedError.of(key.key_id, key.project)
    return key.project


def name_upstream(headers: dict[str, str], project: str | None) -> None:
    """Set the header that goes up (and is signed with the rest) when there is a project."""
    if project is not None:
        headers[HEADER] = project
