"""Which client headers go up to Mantle, and how the request is signed.

Forwarded: an allow-list — `OpenAI-Project`, every `X-Amzn-Bedrock-*` and `X-Amzn-Mantle-*`
header. Never forwarded: the client's `Authorization`, `x-api-key`, cookies, hop-by-hop and
forwarding headers — anything not on the list. Everything we send is signed except what httpx
adds itself (`accept`, `accept-encoding`, `connection`, `user-agent`, `content-length`), because a
signed hop-by-hop header (`connection`) made Mantle answer 401 (reference/mantle-facts.md §2.2).

SigV4 uses service `bedrock-mantle`, the region of the host, the hex SHA-256 of the exact body
bytes (also sent as `x-amz-content-sha256`, as the official SDKs do), and credentials resolved
on every request so a refreshed Lambda role session is picked up without a restart.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from mantle_gateway.errors import InvalidRequestError, UpstreamError

if TYPE_CHECKING:
    from botocore.credentials import ReadOnlyCredentials

SERVICE = "bedrock-mantle"
_FIELD_VALUE = re.compile(r"[\x20-\x7e\t]{0,8192}")
"""Visible ASCII, space and tab: what every hop (httpx, h11, SigV4 canonical form) accepts."""
_FORWARDED_EXACT = frozenset({"openai-project"})
_FORWARDED_PREFIXES = ("x-amzn-bedrock-", "x-amzn-mantle-")
GUARDRAIL_PREFIX = "x-amzn-bedrock-guardrail"


def forwarded_headers(client_headers: Mapping[str, str]) -> dict[str, str]:
    """The client headers that go up; a value that cannot go up unchanged is refused (400):
    dropping it would silently change the request (an `OpenAI-Project` header lost bills the
    default project), and a control character must never reach the signed request."""
    out: dict[str, str] = {}
    for name, value in client_headers.items():
        if name in _FORWARDED_EXACT or name.startswith(_FORWARDED_PREFIXES):
            if not _FIELD_VALUE.fullmatch(value):
                raise InvalidRequestError(
                    f"Header {name} has characters that cannot be forwarded.", param=name
                )
            # SigV4 canonicalizes a value by collapsing its whitespace; send it that way too, so
            # what goes on the wire is what was signed whichever way a verifier reads tabs.
            out[name] = " ".join(value.split())
    return out


class Signer(Protocol):
    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        """Return the headers to send (the input plus the authentication headers)."""
        ...


class SigV4Signer:
    def __init__(self, credentials: Callable[[], ReadOnlyCredentials | None], region: str) -> None:
        self._credentials = credentials
        self._region = region

    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        creds = self._credentials()
        if creds is None:
            raise UpstreamError(
                "The gateway has no AWS credentials to sign the upstream call.",
                code="no_credentials",
            )
        signed = dict(headers)
        signed["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
        request = AWSRequest(method=method, url=url, data=body, headers=signed)
        SigV4Auth(creds, SERVICE, self._region).add_auth(request)
        return dict(request.headers.items())


class BearerSigner:
    """Bedrock API key mode: `Authorization: Bearer <key>` instead of a signature."""

    def __init__(self, token: str) -> None:
        self._token = token

    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        return {**headers, "authorization": f"Bearer {self._token}"}


def default_credentials() -> Callable[[], ReadOnlyCredentials | None]:
    """The default botocore chain, resolved once; each call returns current frozen credentials."""
    import botocore.session

    session = botocore.session.get_session()
    holder: dict[str, object] = {}

    def current() -> ReadOnlyCredentials | None:
        if "creds" not in holder:
            holder["creds"] = session.get_credentials()
        creds = holder["creds"]
        if creds is None:
            del holder["creds"]  # credentials may appear later (e.g. after `aws sso login`)
            return None
        frozen: ReadOnlyCredentials = creds.get_frozen_credentials()  # type: ignore[attr-defined]
        return frozen

    return current


def static_credentials(access_key: str, secret_key: str) -> Callable[[], ReadOnlyCredentials]:
    from botocore.credentials import ReadOnlyCredentials

    creds = ReadOnlyCredentials(access_key, secret_key, None)
    return lambda: creds
