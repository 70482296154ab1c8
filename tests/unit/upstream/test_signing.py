"""Header allow-list, CRLF refusal, and what a SigV4 signature covers."""

import pytest
from botocore.credentials import ReadOnlyCredentials

from mantle_gateway.errors import InvalidRequestError
from mantle_gateway.upstream.signing import BearerSigner, SigV4Signer, forwarded_headers


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
