"""The simulator's SigV4 verifier: agrees with botocore and AWS's own example, refuses tampering."""

from __future__ import annotations

import calendar
import hashlib
import time
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from mantle_gateway.simulator import SIMULATOR_ACCESS_KEY, SIMULATOR_SECRET_KEY, Simulator
from mantle_gateway.simulator.sigv4 import (
    SignatureError,
    WireRequest,
    canonical_query,
    canonical_uri,
    parse_authorization,
    verify,
)

CHAT = {"model": "openai.gpt-oss-120b", "messages": [{"role": "user", "content": "hi"}]}
SECRETS = {SIMULATOR_ACCESS_KEY: SIMULATOR_SECRET_KEY}
MakeClient = Callable[..., httpx.Client]


def _error(response: httpx.Response) -> dict[str, object]:
    error = response.json()["error"]
    assert isinstance(error, dict)
    assert set(error) == {"code", "message", "param", "type"}
    return error


def _assert_refused(response: httpx.Response, sim: Simulator, fragment: str) -> None:
    assert response.status_code == 401, response.text
    error = _error(response)
    assert error["code"] == "invalid_signature"
    assert error["type"] == "permission_denied_error"
    assert error["param"] is None
    assert fragment in str(error["message"])
    seen = sim.requests[-1]
    assert seen.signature_ok is False
    assert seen.signature_error is not None
    assert fragment in seen.signature_error


# ----------------------------------------------------------------------------- pure functions


def test_aws_documentation_example_get_vanilla() -> None:
    """The `get-vanilla` case of AWS's SigV4 test suite, signature copied from it."""
    signature = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    request = WireRequest(
        "GET",
        "/",
        "",
        [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,"
                f" SignedHeaders=host;x-amz-date, Signature={signature}",
            ),
        ],
        b"",
    )
    now = calendar.timegm(time.strptime("20150830T123600Z", "%Y%m%dT%H%M%SZ"))
    auth = verify(
        request,
        region="us-east-1",
        secrets={"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
        now=now,
        service="service",
    )
    assert auth.access_key == "AKIDEXAMPLE"


def test_canonical_uri_encodes_the_wire_path_again_and_removes_dot_segments() -> None:
    assert canonical_uri("") == "/"
    assert canonical_uri("/v1/responses/resp_1") == "/v1/responses/resp_1"
    assert canonical_uri("/a%20b") == "/a%2520b"
    assert canonical_uri("/a/./b/../c//d/") == "/a/c/d/"


def test_canonical_query_sorts_and_reencodes() -> None:
    assert canonical_query("") == ""
    assert canonical_query("b=2&a=1&a=0") == "a=0&a=1&b=2"
    assert canonical_query("include[]=x&flag") == "flag=&include%5B%5D=x"
    assert canonical_query("q=a%20b~") == "q=a%20b~"


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("Bearer x", "Unsupported authorization algorithm"),
        ("AWS4-HMAC-SHA256 Credential=AK/20250101/us-east-1/bedrock-mantle", "missing"),
        (
            "AWS4-HMAC-SHA256 Credential=AK/x/aws4_request, SignedHeaders=host, Signature=0",
            "Credential must be",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AK/20250101/us-east-1/bedrock-mantle/aws4_request,"
            " SignedHeaders=x-amz-date;host, Signature=0",
            "sorted",
        ),
    ],
)
def test_malformed_authorization_headers(header: str, fragment: str) -> None:
    with pytest.raises(SignatureError, match=fragment):
        parse_authorization(header)


def _botocore_signed(
    method: str, path: str, query: str, body: bytes, headers: dict[str, str]
) -> WireRequest:
    url = f"http://127.0.0.1:8080{path}" + (f"?{query}" if query else "")
    aws = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(
        Credentials(SIMULATOR_ACCESS_KEY, SIMULATOR_SECRET_KEY), "bedrock-mantle", "us-east-1"
    ).add_auth(aws)
    wire = [("Host", "127.0.0.1:8080"), *aws.headers.items()]
    return WireRequest(method, path, query, wire, body)


_segment = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/"), min_size=1, max_size=8
).filter(lambda s: s not in (".", ".."))
_pair = st.tuples(st.text(min_size=1, max_size=6), st.text(max_size=6))


@settings(max_examples=60, deadline=None)
@given(
    segments=st.lists(_segment, min_size=1, max_size=4),
    pairs=st.lists(_pair, max_size=4),
    body=st.binary(max_size=256),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    header_value=st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20
    ),
)
def test_agrees_with_botocore_on_arbitrary_requests(
    segments: list[str],
    pairs: list[tuple[str, str]],
    body: bytes,
    method: str,
    header_value: str,
) -> None:
    """Whatever botocore signs (paths, queries, bodies, header spacing), the verifier accepts."""
    path = "/" + "/".join(quote(segment, safe="") for segment in segments)
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
    headers = {"content-type": "application/json", "openai-project": header_value}
    request = _botocore_signed(method, path, query, body, headers)
    verify(request, region="us-east-1", secrets=SECRETS)


def test_host_must_be_signed() -> None:
    request = _botocore_signed("GET", "/v1/models", "", b"", {})
    auth_header = dict(request.headers)["Authorization"]
    forged = auth_header.replace("SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date")
    headers = [(k, forged if k == "Authorization" else v) for k, v in request.headers]
    with pytest.raises(SignatureError, match="'host' must be a signed header"):
        verify(
            WireRequest("GET", "/v1/models", "", headers, b""), region="us-east-1", secrets=SECRETS
        )


# ----------------------------------------------------------------------------- over HTTP


def test_botocore_signed_post_is_accepted(sim: Simulator, client: httpx.Client) -> None:
    response = client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200, response.text
    seen = sim.requests[-1]
    assert seen.signature_ok is True
    assert seen.signature_error is None
    assert "bedrock-mantle/aws4_request" in seen.headers["authorization"]


def test_botocore_signed_get_with_query_is_accepted(sim: Simulator, client: httpx.Client) -> None:
    response = client.get("/v1/models", params={"b": "2", "a": "x~y", "include[]": "a.b"})
    assert response.status_code == 200, response.text
    assert sim.requests[-1].query == "b=2&a=x~y&include%5B%5D=a.b"


def test_query_space_must_be_percent_encoded(sim: Simulator, client: httpx.Client) -> None:
    """SigV4 encodes a space as %20; botocore signs a raw `+` as is, which the spec reads as a
    literal plus, so a form-encoded query fails (normalize queries before signing)."""
    assert client.get("/v1/models?q=a%20b").status_code == 200
    _assert_refused(client.get("/v1/models?q=a+b"), sim, "q=a%2Bb")


def test_session_token_and_content_sha256_are_accepted_when_signed(
    sim: Simulator, make_client: MakeClient
) -> None:
    def add_hash(request: httpx.Request) -> None:
        request.headers["x-amz-content-sha256"] = hashlib.sha256(request.content).hexdigest()

    http = make_client(
        before=(add_hash,), token="session-token", sign=("content-type", "x-amz-content-sha256")
    )
    response = http.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200, response.text
    seen = sim.requests[-1]
    assert seen.headers["x-amz-security-token"] == "session-token"
    assert "x-amz-content-sha256" in seen.headers["authorization"]


def test_official_openai_bedrock_client_signature_is_accepted(sim: Simulator) -> None:
    """A third, independent signer: the openai SDK's own Bedrock SigV4 support."""
    import openai

    bedrock = openai.BedrockOpenAI(
        base_url=sim.url + "/openai/v1",
        aws_region="us-east-1",
        aws_access_key_id=SIMULATOR_ACCESS_KEY,
        aws_secret_access_key=SIMULATOR_SECRET_KEY,
        max_retries=0,
    )
    answer = bedrock.responses.create(model="openai.gpt-5.5", input="hello world")
    assert answer.usage is not None
    assert answer.usage.input_tokens == 2
    assert sim.requests[-1].signature_ok is True


def test_tampered_body_is_rejected(sim: Simulator, make_client: MakeClient) -> None:
    def tamper(request: httpx.Request) -> None:
        request.stream = httpx.ByteStream(request.content.replace(b"hi", b"ho"))

    response = make_client(after=(tamper,)).post("/v1/chat/completions", json=CHAT)
    _assert_refused(response, sim, "signature we calculated does not match")


def test_content_sha256_not_matching_the_body_is_rejected(
    sim: Simulator, make_client: MakeClient
) -> None:
    def wrong_hash(request: httpx.Request) -> None:
        request.headers["x-amz-content-sha256"] = hashlib.sha256(b"other").hexdigest()

    http = make_client(before=(wrong_hash,), sign=("content-type", "x-amz-content-sha256"))
    response = http.post("/v1/chat/completions", json=CHAT)
    _assert_refused(response, sim, "x-amz-content-sha256")


def test_wrong_service_is_rejected(sim: Simulator, make_client: MakeClient) -> None:
    response = make_client(service="bedrock").post("/v1/chat/completions", json=CHAT)
    _assert_refused(response, sim, "Credential should be scoped to correct service")


def test_wrong_region_is_rejected(sim: Simulator, make_client: MakeClient) -> None:
    response = make_client(region="eu-west-1").post("/v1/chat/completions", json=CHAT)
    _assert_refused(response, sim, "region")


def test_unknown_access_key_is_rejected(sim: Simulator, make_client: MakeClient) -> None:
    response = make_client(access_key="AKIDOTHER").get("/v1/models")
    _assert_refused(response, sim, "security token included in the request is invalid")


def test_wrong_secret_is_rejected(sim: Simulator, make_client: MakeClient) -> None:
    response = make_client(secret_key="not-the-secret").get("/v1/models")
    _assert_refused(response, sim, "signature we calculated does not match")


def test_header_modified_after_signing_is_rejected(sim: Simulator, make_client: MakeClient) -> None:
    def modify(request: httpx.Request) -> None:
        request.headers["content-type"] = "application/json; charset=utf-8"

    response = make_client(after=(modify,)).post("/v1/chat/completions", json=CHAT)
    _assert_refused(response, sim, "signature we calculated does not match")
    assert "content-type:application/json; charset=utf-8\n" in str(sim.requests[-1].signature_error)


def test_unsigned_amz_header_is_rejected(sim: Simulator, make_client: MakeClient) -> None:
    def add_header(request: httpx.Request) -> None:
        request.headers["x-amz-meta-extra"] = "1"

    response = make_client(after=(add_header,)).post("/v1/chat/completions", json=CHAT)
    _assert_refused(response, sim, "x-amz-meta-extra must be signed")


def test_unsigned_security_token_is_rejected(sim: Simulator, make_client: MakeClient) -> None:
    def add_token(request: httpx.Request) -> None:
        request.headers["x-amz-security-token"] = "late"

    response = make_client(after=(add_token,)).get("/v1/models")
    _assert_refused(response, sim, "x-amz-security-token must be signed")


@pytest.mark.parametrize("shift", [-301.0, 301.0])
def test_stale_or_future_date_is_rejected(
    sim: Simulator, client: httpx.Client, shift: float
) -> None:
    sim.clock = lambda: time.time() - shift
    response = client.get("/v1/models")
    _assert_refused(response, sim, "Signature expired or not yet valid")


def test_small_clock_skew_is_tolerated(sim: Simulator, client: httpx.Client) -> None:
    sim.clock = lambda: time.time() + 240
    assert client.get("/v1/models").status_code == 200


def test_missing_authorization_is_refused_like_mantle(sim: Simulator) -> None:
    response = httpx.post(sim.url + "/v1/chat/completions", json=CHAT)
    assert response.status_code == 401
    assert _error(response) == {
        "code": "invalid_api_key",
        "message": "Missing 'authorization' or 'x-api-key' header",
        "param": None,
        "type": "permission_denied_error",
    }
    assert sim.requests[-1].signature_ok is False


def test_bearer_token_when_configured() -> None:
    with Simulator(bearer_token="bedrock-api-key-abc") as sim:
        good = httpx.get(
            sim.url + "/v1/models", headers={"authorization": "Bearer bedrock-api-key-abc"}
        )
        bad = httpx.get(sim.url + "/v1/models", headers={"authorization": "Bearer nope"})
    assert good.status_code == 200
    assert bad.status_code == 401
    assert _error(bad)["message"] == "Invalid bearer token"
    assert [seen.signature_ok for seen in sim.requests] == [True, False]


def test_bearer_token_refused_when_not_configured(sim: Simulator) -> None:
    response = httpx.get(sim.url + "/v1/models", headers={"authorization": "Bearer x"})
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_api_key"


def test_extra_credentials_can_be_added(sim: Simulator, make_client: MakeClient) -> None:
    sim.credentials["AKIDSECOND"] = "second-secret"
    response = make_client(access_key="AKIDSECOND", secret_key="second-secret").get("/v1/models")
    assert response.status_code == 200
