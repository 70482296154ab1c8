"""Which client headers go up to Mantle, and how the request is signed.

Forwarded: an allow-list — every `X-Amzn-Bedrock-*` and `X-Amzn-Mantle-*` header, plus the
headers of the API family the client speaks (`OpenAI-Project`; or `anthropic-version`,
`anthropic-beta`, `anthropic-workspace-id`). Never forwarded: the client's `Authorization`,
`x-api-key`, cookies, hop-by-hop and forwarding headers — anything not on the list. The query
string goes up re-encoded, without the parameters that carry credentials (`forwarded_query`).
Everything we send is signed except what httpx adds itself (`accept`, `accept-encoding`,
`connection`, `user-agent`, `content-length`), because a signed hop-by-hop header (`connection`)
made Mantle answer 401 (reference/mantle-facts.md §2.2).

SigV4 uses service `bedrock-mantle` (`bedrock` for the guardrail calls), the region of the
host, the hex SHA-256 of the exact body bytes (also sent as `x-amz-content-sha256`, as the
official SDKs do), and credentials resolved on every request so a refreshed Lambda role session
is picked up without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple, Protocol
from urllib.parse import SplitResult, parse_qsl, quote, urlencode, urlsplit

from mantle_gateway.errors import InvalidRequestError, UpstreamError
from mantle_gateway.secret_text import looks_secret

SERVICE = "bedrock-mantle"
_FIELD_VALUE = re.compile(r"[\x20-\x7e\t]{0,8192}")
"""Visible ASCII, space and tab: what every hop (httpx, h11, SigV4 canonical form) accepts."""
OPENAI_HEADERS = frozenset({"openai-project"})
_FORWARDED_PREFIXES = ("x-amzn-bedrock-", "x-amzn-mantle-")
GUARDRAIL_PREFIX = "x-amzn-bedrock-guardrail"


def forwarded_headers(
    client_headers: Mapping[str, str], exact: frozenset[str] = OPENAI_HEADERS
) -> dict[str, str]:
    """The client headers that go up (`exact` names the API family's own); a value that cannot go
    up unchanged is refused (400): dropping it would silently change the request (an
    `OpenAI-Project` header lost bills the default project), and a control character must never
    reach the signed request."""
    out: dict[str, str] = {}
    for name, value in client_headers.items():
        if name in exact or name.startswith(_FORWARDED_PREFIXES):
            if not _FIELD_VALUE.fullmatch(value):
                raise InvalidRequestError(
                    f"Header {name} has characters that cannot be forwarded.", param=name
                )
            # SigV4 canonicalizes a value by collapsing its whitespace; send it that way too, so
            # what goes on the wire is what was signed whichever way a verifier reads tabs.
            out[name] = " ".join(value.split())
    return out


_CREDENTIAL_PARAMS = frozenset(
    {"api_key", "apikey", "key", "x_api_key", "access_token", "authorization"}
)
"""Query parameters clients put keys in (`-` read as `_`, any case): never sent upstream."""


def forwarded_query(query: str) -> str:
    """The client's query as it goes up: credential parameters and any parameter whose name or
    value looks like a key (`mgw_…`, a bearer value) removed, then re-encoded the way SigV4
    canonicalizes it (RFC 3986, spaces as %20), so the bytes sent are exactly the bytes signed
    whatever encoding habit the client had. Mantle authenticates by signature only, so a key in
    the query is never needed there; sent, it would sit in Mantle's request logs."""
    pairs = [
        (name, value)
        for name, value in parse_qsl(query, keep_blank_values=True)
        if name.strip().lower().replace("-", "_") not in _CREDENTIAL_PARAMS
        and not looks_secret(name)
        and not looks_secret(value)
    ]
    return urlencode(pairs, quote_via=quote, safe="-_.~")


class Credentials(Protocol):
    """What a signature needs (botocore's frozen credentials have the same three fields)."""

    @property
    def access_key(self) -> str: ...
    @property
    def secret_key(self) -> str: ...
    @property
    def token(self) -> str | None: ...


class StaticCredentials(NamedTuple):
    access_key: str
    secret_key: str
    token: str | None = None


CredentialSource = Callable[[], Credentials | None]
"""Called for every signature, so a rotated role session is picked up without a restart."""


class Signer(Protocol):
    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        """Return the headers to send (the input plus the authentication headers)."""
        ...


class SigV4Signer:
    """SigV4 written out with hashlib/hmac because botocore's `SigV4Auth` on an `AWSRequest`
    (`email.message`-based headers) cost about five times the CPU on the request thread.

    The canonical request is built the way botocore 1.44's `SigV4Auth.add_auth` builds it, so
    the bytes Mantle checks are the ones it accepted before; the unit tests compare the two on
    generated requests. Where botocore departs from the published algorithm, this does too, on
    purpose, and says so."""

    def __init__(
        self,
        credentials: CredentialSource,
        region: str,
        clock: Callable[[], float] = time.time,
        service: str = SERVICE,
    ) -> None:
        self._credentials = credentials
        self._region = region
        self._clock = clock
        self._service = service
        """`bedrock-mantle` for Mantle; `bedrock` for bedrock-runtime (ApplyGuardrail); `events` for
        budget alerts' PutEvents (upstream/events.py)."""
        self._scope_tail = f"{region}/{service}/aws4_request"
        self._key: tuple[str, str, bytes] = ("", "", b"")
        """(secret key, yyyymmdd, signing key): the HMAC chain only changes once a day or when
        the role session rotates; one entry, so rotated secrets do not pile up."""

    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        """`headers` come from `forwarded_headers` plus `content-type` (or a service's own, such
        as `x-amz-target`): lower-case names, never `authorization`, `date`, `host`,
        `x-amz-date`, `x-amz-content-sha256` or `x-amz-security-token`, which are the signer's."""
        creds = self._credentials()
        if creds is None or not creds.secret_key:
            raise UpstreamError(
                "The gateway has no AWS credentials to sign the upstream call.",
                code="no_credentials",
            )
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock()))
        day = amz_date[:8]
        payload_hash = hashlib.sha256(body).hexdigest()
        out = {**headers, "x-amz-content-sha256": payload_hash, "X-Amz-Date": amz_date}
        if creds.token:
            out["X-Amz-Security-Token"] = creds.token
        parts = urlsplit(url)
        signed = _headers_to_sign(out, parts)
        names = sorted(signed)
        canonical = "\n".join(
            (
                method.upper(),
                # Dot segments and empty segments dropped, then quoted again: `%` becomes `%25`.
                quote(_remove_dot_segments(parts.path), safe="/~"),
                _canonical_query(parts.query),
                "".join(f"{name}:{signed[name]}\n" for name in names),
                ";".join(names),
                payload_hash,
            )
        )
        scope = f"{day}/{self._scope_tail}"
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{digest}"
        key = self._signing_key(creds.secret_key, day)
        signature = hmac.digest(key, to_sign.encode(), "sha256").hex()
        out["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return out

    def _signing_key(self, secret: str, day: str) -> bytes:
        cached_secret, cached_day, key = self._key
        if cached_secret == secret and cached_day == day:
            return key
        key = ("AWS4" + secret).encode()
        for part in (day, self._region, self._service, "aws4_request"):
            key = hmac.digest(key, part.encode(), "sha256")
        self._key = (secret, day, key)
        return key


_UNSIGNED_HEADERS = frozenset(
    {
        "baggage",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    }
)
"""botocore's SIGNED_HEADERS_BLACKLIST: left unsigned even when passed, as botocore does."""


def _headers_to_sign(headers: Mapping[str, str], parts: SplitResult) -> dict[str, str]:
    """Canonical value by lower-case name: whitespace runs (any `str.split` whitespace, not only
    spaces) collapsed, names differing only in case joined with `,`; `host` from the URL."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        lname = name.lower()
        if lname not in _UNSIGNED_HEADERS:
            trimmed = " ".join(value.split())
            out[lname] = f"{out[lname]},{trimmed}" if lname in out else trimmed
    if "host" not in out:
        out["host"] = _host(parts)
    return out


def _host(parts: SplitResult) -> str:
    """Lower-case host, IPv6 in brackets, userinfo dropped, port only if not the scheme's."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    return host


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 plus empty segments removed, as botocore's `normalize_url_path`."""
    if not path:
        return "/"
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and segments else ""
    return first + "/".join(segments) + last


def _canonical_query(query: str) -> str:
    """The URL's pairs sorted by (name, value) and NOT re-encoded, as botocore does for a query
    in the URL: `forwarded_query` already sent them in SigV4's encoding."""
    if not query:
        return ""
    pairs = sorted(pair.partition("=") for pair in query.split("&"))
    return "&".join(f"{name}={value}" for name, _, value in pairs)


class BearerSigner:
    """Bedrock API key mode: `Authorization: Bearer <key>` instead of a signature."""

    def __init__(self, token: str) -> None:
        self._token = token

    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        return {**headers, "authorization": f"Bearer {self._token}"}


def default_credentials() -> CredentialSource:
    """The default chain. Its first link, the environment (where Lambda puts the function role's
    session), is read here, as botocore's environment provider reads it, without importing
    botocore: that import is ~0.1 s of a cold start. Otherwise (profiles, SSO, containers,
    instance roles, or credentials that say when they expire) botocore's chain, resolved once;
    each call returns the current frozen credentials."""
    environ = os.environ
    access_key = environ.get("AWS_ACCESS_KEY_ID")
    secret_key = environ.get("AWS_SECRET_ACCESS_KEY")
    if access_key and secret_key and not environ.get("AWS_CREDENTIAL_EXPIRATION"):
        token = environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_SECURITY_TOKEN") or None
        return static_credentials(access_key, secret_key, token)
    return _botocore_chain()


def _botocore_chain() -> CredentialSource:
    import botocore.session

    session = botocore.session.get_session()
    holder: dict[str, object] = {}

    def current() -> Credentials | None:
        if "creds" not in holder:
            holder["creds"] = session.get_credentials()
        creds = holder["creds"]
        if creds is None:
            del holder["creds"]  # credentials may appear later (e.g. after `aws sso login`)
            return None
        frozen: Credentials = creds.get_frozen_credentials()  # type: ignore[attr-defined]
        return frozen

    return current


def static_credentials(
    access_key: str, secret_key: str, token: str | None = None
) -> CredentialSource:
    fixed = StaticCredentials(access_key, secret_key, token)
    return lambda: fixed
