"""Header allow-list, CRLF refusal, what a SigV4 signature covers, and that our SigV4 is
botocore's, byte for byte, and passes the simulator's independent verifier."""

import hashlib
import hmac
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import quote

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from mantle_gateway.errors import InvalidRequestError, UpstreamError
from mantle_gateway.simulator import SIMULATOR_ACCESS_KEY, SIMULATOR_SECRET_KEY
from mantle_gateway.simulator.sigv4 import WireRequest, verify
from mantle_gateway.upstream.signing import (
    SERVICE,
    BearerSigner,
    SigV4Signer,
    default_credentials,
    forwarded_headers,
    forwarded_query,
)


def test_only_allowed_headers_go_up() -> None:
    client = {
        "authorization": "Bearer mgw_secret",
        "x-api-key": "mgw_secret",
        "cookie": "a=b",
        "connection": "keep-alive",
        "x-forwarded-for": "1.2.3.4",
        "user-agent": "OpenAI/Python",
        "openai-project": "proj_1",
        "x-amzn-bedrock-guardrailidentifier": "gr-1",
        "x-amzn-bedrock-trace": "ENABLED",
    }
    assert forwarded_headers(client) == {
        "openai-project": "proj_1",
        "x-amzn-bedrock-guardrailidentifier": "gr-1",
        "x-amzn-bedrock-trace": "ENABLED",
    }


@pytest.mark.parametrize("value", ["a\r\nx-evil: 1", "caf\u00e9", "a\x00b", "a\x0bb"])
def test_a_forwarded_value_that_cannot_go_up_unchanged_is_a_400(value: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        forwarded_headers({"openai-project": value})
    assert info.value.status == 400
    assert info.value.param == "openai-project"


def test_whitespace_in_a_forwarded_value_is_sent_as_signed() -> None:
    assert forwarded_headers({"openai-project": " a\tb  c "}) == {"openai-project": "a b c"}


def test_sigv4_signs_everything_it_is_given_with_the_body_hash() -> None:
    creds = ReadOnlyCredentials("AKID", "SECRET", "TOKEN")
    signer = SigV4Signer(lambda: creds, "us-east-1")
    headers = signer.sign(
        "POST",
        "https://bedrock-mantle.us-east-1.api.aws/v1/chat/completions?x=1",
        {"content-type": "application/json", "openai-project": "p"},
        b"{}",
    )
    auth = headers["Authorization"]
    assert "/us-east-1/bedrock-mantle/aws4_request" in auth
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert signed == sorted(
        [
            "content-type",
            "host",
            "openai-project",
            "x-amz-content-sha256",
            "x-amz-date",
            "x-amz-security-token",
        ]
    )
    assert (
        headers["x-amz-content-sha256"]
        == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )


def test_credentials_are_resolved_per_request() -> None:
    calls = []

    def creds() -> ReadOnlyCredentials:
        calls.append(1)
        return ReadOnlyCredentials(f"AKID{len(calls)}", "S", None)

    signer = SigV4Signer(creds, "us-east-1")
    first = signer.sign("GET", "https://h/v1/models", {}, b"")["Authorization"]
    second = signer.sign("GET", "https://h/v1/models", {}, b"")["Authorization"]
    assert "AKID1/" in first and "AKID2/" in second


def test_bearer_mode() -> None:
    assert BearerSigner("tok").sign("GET", "https://h", {}, b"")["authorization"] == "Bearer tok"


# -- our SigV4 against botocore's and against the simulator's verifier ---------------------------

REGIONS = ("us-east-1", "eu-west-1")
BASE_URLS = (
    "https://bedrock-mantle.us-east-1.api.aws",
    "https://bedrock-mantle.us-east-1.api.aws:443",
    "https://Bedrock-Mantle.EU-West-1.api.aws:8443",
    "http://127.0.0.1:80",
    "http://127.0.0.1:8123",
    "http://user:pw@localhost:9000",
    "http://[::1]:9000",
)
_VALUE_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("\t  ")
"""What `forwarded_headers` lets through: visible ASCII, spaces and tabs, runs of them."""
_segment = st.one_of(
    st.sampled_from(["", ".", "..", "v1", "%20", "%2F", "a%zz", "resp_1"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/?#\t\r\n"), max_size=6),
)
_raw_query = st.lists(
    st.tuples(st.text("ab-._~ +%é=", max_size=3), st.text("ab-._~ +%é&", max_size=3)),
    max_size=5,
).map(lambda pairs: "&".join(f"{name}={value}" for name, value in pairs))
"""Client queries whose names share prefixes (`a`, `a-b`, `a.`): sorting pairs and sorting
`name=value` strings give different orders for those."""
_header_name = st.one_of(
    st.sampled_from(["openai-project", "content-type"]),
    st.builds(
        str.__add__,
        st.sampled_from(["x-amzn-bedrock-", "x-amzn-mantle-"]),
        st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12),
    ),
)
_token = st.none() | st.text(_VALUE_CHARS, min_size=1, max_size=40)
_sts_token = st.none() | st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", min_size=1, max_size=40
)
"""Real session tokens are base64: no inner whitespace, which botocore collapses (tabs too) and
the simulator's verifier does not (only spaces), so a tab in a token would be a verifier quirk."""


def _frozen_clock(seconds: int, fraction: float) -> tuple[Callable[[], float], datetime]:
    """The same instant for our signer (epoch seconds) and for botocore (naive UTC datetime)."""
    when = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    return lambda: seconds + fraction, when + timedelta(microseconds=round(fraction * 1e6))


def _botocore_headers(
    creds: ReadOnlyCredentials,
    region: str,
    when: datetime,
    request: tuple[str, str, dict[str, str], bytes],
) -> list[tuple[str, str]]:
    """What the gateway sent before: botocore's SigV4Auth at a pinned time."""
    method, url, headers, body = request
    signed = {**headers, "x-amz-content-sha256": hashlib.sha256(body).hexdigest()}
    aws = AWSRequest(method=method, url=url, data=body, headers=signed)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        SigV4Auth(creds, SERVICE, region).add_auth(aws)
    return list(aws.headers.items())


@settings(max_examples=400, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "post"]),
    base_url=st.sampled_from(BASE_URLS),
    segments=st.lists(_segment, max_size=5),
    trailing_slash=st.booleans(),
    raw_query=_raw_query,
    headers=st.dictionaries(_header_name, st.text(_VALUE_CHARS, max_size=20), max_size=4),
    body=st.binary(max_size=64),
    token=_token,
    secret=st.text(min_size=1, max_size=20),
    region=st.sampled_from(REGIONS),
    seconds=st.integers(0, 4_102_444_800),
    fraction=st.sampled_from([0.0, 0.5, 0.999]),
)
def test_signs_exactly_as_botocore(
    method: str,
    base_url: str,
    segments: list[str],
    trailing_slash: bool,
    raw_query: str,
    headers: dict[str, str],
    body: bytes,
    token: str | None,
    secret: str,
    region: str,
    seconds: int,
    fraction: float,
) -> None:
    """Same headers, same order, same signature: any difference in the canonical request (path
    normalization and quoting, query order, header trimming, host, date) changes the signature."""
    url = base_url + "/" + "/".join(segments) + ("/" if trailing_slash else "")
    if query := forwarded_query(raw_query):
        url += "?" + query  # as `Pipeline._send` builds it
    creds = ReadOnlyCredentials("AKIDEXAMPLE", secret, token)
    clock, when = _frozen_clock(seconds, fraction)
    ours = SigV4Signer(lambda: creds, region, clock=clock).sign(method, url, headers, body)
    assert list(ours.items()) == _botocore_headers(
        creds, region, when, (method, url, headers, body)
    )


@settings(max_examples=100, deadline=None)
@given(
    headers=st.dictionaries(
        st.text("abcdeXYZ-", min_size=1, max_size=3) | st.sampled_from(["User-Agent", "te"]),
        st.text(st.characters(codec="utf-8"), max_size=8),
        max_size=5,
    ),
)
def test_headers_outside_the_allow_list_are_signed_as_botocore_would(
    headers: dict[str, str],
) -> None:
    """Beyond what the gateway sends: names in mixed case (repeats joined with `,`), botocore's
    never-signed names, any Unicode whitespace in values."""
    creds = ReadOnlyCredentials("AKID", "SECRET", None)
    clock, when = _frozen_clock(1_700_000_000, 0.0)
    request = ("POST", "https://bedrock-mantle.us-east-1.api.aws/v1/responses", headers, b"{}")
    ours = SigV4Signer(lambda: creds, "us-east-1", clock=clock).sign(*request)
    assert list(ours.items()) == _botocore_headers(creds, "us-east-1", when, request)


@settings(max_examples=100, deadline=None)
@given(
    segments=st.lists(st.text(st.characters(codec="utf-8"), max_size=6), min_size=1, max_size=4),
    raw_query=_raw_query,
    client_headers=st.dictionaries(_header_name, st.text(_VALUE_CHARS, max_size=20), max_size=4),
    body=st.binary(max_size=64),
    token=_sts_token,
)
def test_the_simulator_verifier_accepts_our_signature(
    segments: list[str],
    raw_query: str,
    client_headers: dict[str, str],
    body: bytes,
    token: str | None,
) -> None:
    """What reaches Mantle: the path and query as httpx puts them on the wire, the headers
    `forwarded_headers` lets through, checked by the independent verifier."""
    url = "http://127.0.0.1:8123/v1/" + "/".join(quote(segment, safe="") for segment in segments)
    if query := forwarded_query(raw_query):
        url += "?" + query
    creds = ReadOnlyCredentials(SIMULATOR_ACCESS_KEY, SIMULATOR_SECRET_KEY, token)
    signer = SigV4Signer(lambda: creds, "us-east-1", clock=lambda: 1_700_000_000.25)
    sent = signer.sign("POST", url, forwarded_headers(client_headers), body)
    wire = httpx.URL(url)
    request = WireRequest(
        "POST",
        wire.raw_path.decode().partition("?")[0],
        wire.query.decode(),
        [("Host", "127.0.0.1:8123"), ("Content-Length", str(len(body))), *sent.items()],
        body,
    )
    secrets = {SIMULATOR_ACCESS_KEY: SIMULATOR_SECRET_KEY}
    verify(request, region="us-east-1", secrets=secrets, now=1_700_000_000)


def test_the_signing_key_is_derived_once_a_day(monkeypatch: pytest.MonkeyPatch) -> None:
    derived: list[bytes] = []
    real_digest = hmac.digest

    def counting(key: bytes, message: bytes, digest: str) -> bytes:
        if message == b"aws4_request":
            derived.append(key)
        return real_digest(key, message, digest)

    monkeypatch.setattr(hmac, "digest", counting)
    now = [datetime(2026, 5, 1, 23, 59, 58, tzinfo=UTC).timestamp()]
    creds = [ReadOnlyCredentials("AKID", "SECRET", None)]
    signer = SigV4Signer(lambda: creds[0], "us-east-1", clock=lambda: now[0])

    def sign() -> str:
        return signer.sign("GET", "https://h/v1/models", {}, b"")["Authorization"]

    first = sign()
    now[0] += 1
    assert sign() != first
    assert len(derived) == 1, "same day, same secret: the cached key"
    now[0] += 1
    assert "/20260502/" in sign()
    assert len(derived) == 2, "a new day: a new key"
    creds[0] = ReadOnlyCredentials("AKID2", "ROTATED", "TOKEN")
    sign()
    assert len(derived) == 3, "a rotated role session: a new key"


def test_the_timestamp_is_the_current_utc_second() -> None:
    creds = ReadOnlyCredentials("AKID", "SECRET", None)
    signer = SigV4Signer(lambda: creds, "us-east-1", clock=lambda: 1_700_000_000.999)
    headers = signer.sign("GET", "https://h/v1/models", {}, b"")
    assert headers["X-Amz-Date"] == "20231114T221320Z"
    assert (
        "Credential=AKID/20231114/us-east-1/bedrock-mantle/aws4_request"
        in (headers["Authorization"])
    )


@pytest.mark.parametrize("creds", [None, ReadOnlyCredentials("AKID", None, None)])
def test_no_credentials_is_an_upstream_error(creds: ReadOnlyCredentials | None) -> None:
    signer = SigV4Signer(lambda: creds, "us-east-1")
    with pytest.raises(UpstreamError) as info:
        signer.sign("GET", "https://h/v1/models", {}, b"")
    assert info.value.code == "no_credentials"


def test_signing_does_not_load_botocore() -> None:
    """The request path stays off botocore's email.message-based request and headers."""
    code = (
        "import sys, types\n"
        "from mantle_gateway.upstream.signing import SigV4Signer\n"
        "creds = types.SimpleNamespace(access_key='A', secret_key='S', token='T')\n"
        "SigV4Signer(lambda: creds, 'us-east-1').sign('POST', 'https://h/v1/x', {}, b'{}')\n"
        "print(sorted(name for name in sys.modules if name.startswith('botocore')))\n"
    )
    functions = Path(__file__).parents[3] / "functions"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(functions)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"


def test_in_lambda_the_first_request_path_never_imports_botocores_machinery() -> None:
    """Lambda puts the role's session in the environment; reading it there keeps botocore's
    session, credentials and client (~0.1 s to import) out of the cold start: the gateway, its
    signers and its DynamoDB client. (Powertools imports the bare package, 0.5 ms, to name
    itself in the user agent.)"""
    code = (
        "import sys\n"
        "from mantle_gateway import wiring\n"
        "from mantle_gateway.settings import Settings\n"
        "from mantle_gateway.store.dynamo import Dynamo\n"
        "from mantle_gateway.upstream.signing import default_credentials\n"
        "wiring.build(Settings.load())\n"
        "wire = Dynamo(region='us-east-1', endpoint_url=None).wire\n"
        "creds = default_credentials()()\n"
        "print(creds.access_key, creds.token)\n"
        "print(sorted(name for name in sys.modules if name.startswith(('botocore', 'boto3'))))\n"
    )
    functions = Path(__file__).parents[3] / "functions"
    lambda_env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(functions),
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "ASIAROLE",
        "AWS_SECRET_ACCESS_KEY": "role-secret",
        "AWS_SESSION_TOKEN": "role-token",
        "AWS_LAMBDA_FUNCTION_NAME": "gateway",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=lambda_env, capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["ASIAROLE role-token", "['botocore']"]


def test_credentials_that_expire_or_are_missing_go_to_botocores_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_SECURITY_TOKEN", raising=False)
    monkeypatch.delenv("AWS_CREDENTIAL_EXPIRATION", raising=False)
    fixed = default_credentials()()
    assert fixed is not None and (fixed.access_key, fixed.token) == ("AKIDENV", None)

    monkeypatch.setenv("AWS_CREDENTIAL_EXPIRATION", "2099-01-01T00:00:00Z")
    chained = default_credentials()()  # botocore's environment provider, refreshable
    assert chained is not None and chained.access_key == "AKIDENV"
    assert type(chained).__module__.startswith("botocore")


KEY = "mgw_" + "A" * 43


@pytest.mark.parametrize(
    "query",
    [
        f"api_key={KEY}",
        "API_KEY=x",
        "key=anything",
        "Key=anything",
        "x-api-key=v",
        "X_API_KEY=v",
        "api-key=v",
        "apikey=v",
        "Access_Token=v",
        "authorization=Bearer%20abc",
        f"q={KEY}",  # a gateway key under any name
        f"note=my%20key%20is%20{KEY}",
        "api%5Fkey=v",  # percent-encoded name
        f"{KEY}=1",  # a key as the name
        "t=Bearer%20abcdefghijkl",
    ],
)
def test_credential_parameters_never_go_up(query: str) -> None:
    assert forwarded_query(f"limit=5&{query}&order=asc") == "limit=5&order=asc"


def test_other_parameters_go_up_in_order_and_sigv4_encoding() -> None:
    assert forwarded_query("limit=2&order=asc&tag=a+b%2Bc&keys=1&monkey=2") == (
        "limit=2&order=asc&tag=a%20b%2Bc&keys=1&monkey=2"
    )
    assert forwarded_query("key=1") == ""
