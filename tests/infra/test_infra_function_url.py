"""Function URL door: RESPONSE_STREAM, auth NONE, both invoke permissions, sensible CORS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from infra.constructs.function_url import ALLOWED_HEADERS, EXPOSED_HEADERS, GatewayFunctionUrl
from mantle_gateway.core.auth import extract_key
from mantle_gateway.upstream.signing import forwarded_headers

if TYPE_CHECKING:
    from conftest import Synthesis


def url_permissions(permissions: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The resource-policy statements that open the function to the public (Principal '*')."""
    return sorted(
        (p["Properties"] for p in permissions.values() if p["Properties"]["Principal"] == "*"),
        key=lambda p: str(p["Action"]),
    )


def assert_url_permissions(permissions: list[dict[str, Any]], function_ref: dict[str, Any]) -> None:
    invoke, invoke_url = permissions
    assert invoke_url == {
        "Action": "lambda:InvokeFunctionUrl",
        "FunctionName": function_ref,
        "FunctionUrlAuthType": "NONE",
        "Principal": "*",
    }
    # The public grant cannot invoke the function directly: only through its URL.
    assert invoke == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": function_ref,
        "InvokedViaFunctionUrl": True,
        "Principal": "*",
    }


@pytest.mark.parametrize("stage", ["dev", "prod", "flagoff"])
def test_stage_url_streams_without_iam_auth_and_has_both_permissions(
    synth: Synthesis, stage: str
) -> None:
    function_id, _ = synth.one(stage, "gateway", "AWS::Lambda::Function")
    _, url = synth.one(stage, "gateway", "AWS::Lambda::Url")
    permissions = synth.resources(stage, "gateway", "AWS::Lambda::Permission")

    props = url["Properties"]
    assert props["InvokeMode"] == "RESPONSE_STREAM"
    assert props["AuthType"] == "NONE"
    assert props["TargetFunctionArn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert_url_permissions(url_permissions(permissions), {"Fn::GetAtt": [function_id, "Arn"]})


def test_cors_allows_any_origin_without_credentials_and_exposes_rate_limit_headers(
    synth: Synthesis,
) -> None:
    cors = synth.one("prod", "gateway", "AWS::Lambda::Url")[1]["Properties"]["Cors"]
    restricted = synth.one("flagoff", "gateway", "AWS::Lambda::Url")[1]["Properties"]["Cors"]

    assert cors["AllowOrigins"] == ["*"]
    assert cors["AllowCredentials"] is False
    assert sorted(cors["AllowMethods"]) == ["DELETE", "GET", "POST"]
    assert cors["AllowHeaders"] == list(ALLOWED_HEADERS)
    assert cors["ExposeHeaders"] == list(EXPOSED_HEADERS)
    for exposed in ("retry-after", "x-request-id", "x-gateway-request-id"):
        assert exposed in cors["ExposeHeaders"]
    assert restricted["AllowOrigins"] == ["https://app.example.com"]
    # Lambda's CORS limits (API reference, Cors): at most 100 names of at most 1024 characters.
    for names in (cors["AllowHeaders"], cors["ExposeHeaders"]):
        assert len(names) <= 100
        assert all(0 < len(name) <= 1024 for name in names)


def preflight_passes(allow_headers: Sequence[str], request_headers: Sequence[str]) -> bool:
    """The Fetch standard's CORS-preflight header check for a request without credentials
    (fetch.spec.whatwg.org, "CORS-preflight fetch"): each non-safelisted request header must be
    named in Access-Control-Allow-Headers, or matched by `*`, which never matches Authorization.
    `content-type: application/json` is not safelisted, so it counts too."""
    names = {name.lower() for name in allow_headers}
    for header in request_headers:
        header = header.lower()
        if header in names:
            continue
        if "*" in names and header != "authorization":
            continue
        return False
    return True


STAINLESS = [
    "x-stainless-lang",
    "x-stainless-package-version",
    "x-stainless-os",
    "x-stainless-arch",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-retry-count",
    "x-stainless-timeout",
]
"""What the OpenAI and Anthropic JS SDKs add in a browser (their `getPlatformHeaders`)."""

BROWSER_REQUESTS = {
    "openai sdk, bearer key, project": ["authorization", "content-type", "openai-project"],
    "anthropic sdk, x-api-key": [
        "x-api-key",
        "content-type",
        "anthropic-version",
        "anthropic-beta",
        "anthropic-dangerous-direct-browser-access",
    ],
    "bedrock headers": [
        "authorization",
        "content-type",
        "x-amzn-bedrock-guardrailidentifier",
        "x-amzn-bedrock-guardrailversion",
        "x-amzn-bedrock-trace",
    ],
}


@pytest.mark.parametrize("client", sorted(BROWSER_REQUESTS))
def test_browser_preflight_passes_for_what_sdks_send(synth: Synthesis, client: str) -> None:
    cors = synth.one("prod", "gateway", "AWS::Lambda::Url")[1]["Properties"]["Cors"]
    headers = BROWSER_REQUESTS[client] + STAINLESS

    assert preflight_passes(cors["AllowHeaders"], headers)
    # What the URL allowed before: the wildcard alone, which a Bearer key never gets past.
    assert preflight_passes(["*"], headers) == ("authorization" not in headers)


def test_every_header_the_gateway_reads_or_forwards_is_named_not_wildcarded() -> None:
    documented = {
        "openai-project": "proj_1",
        "x-amzn-bedrock-guardrailidentifier": "gr-1",
        "x-amzn-bedrock-guardrailversion": "1",
        "x-amzn-bedrock-trace": "ENABLED",
        "x-amzn-bedrock-performanceconfig-latency": "optimized",
        "x-amzn-bedrock-service-tier": "priority",
        "x-amzn-mantle-client-agent": "codex",
    }
    forwarded = forwarded_headers(documented)

    assert set(forwarded) == set(documented)  # the gateway sends each of them to Mantle
    named = set(ALLOWED_HEADERS) - {"*"}
    assert set(forwarded) <= named
    assert extract_key({"authorization": "Bearer k"}) == extract_key({"x-api-key": "k"}) == "k"
    assert {"authorization", "x-api-key", "content-type"} <= named
    assert all(name == name.lower() for name in ALLOWED_HEADERS + EXPOSED_HEADERS)


def test_construct_alone_in_a_bare_stack_adds_exactly_the_two_permissions() -> None:
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "Bare")
    function = lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context): return None"),
    )
    GatewayFunctionUrl(stack, "Door", function=function, allowed_origins=["*"])

    template = Template.from_stack(stack)

    template.resource_count_is("AWS::Lambda::Permission", 2)
    template.has_resource_properties(
        "AWS::Lambda::Url", {"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"}
    )
    function_id = next(iter(template.find_resources("AWS::Lambda::Function")))
    assert_url_permissions(
        url_permissions(template.find_resources("AWS::Lambda::Permission")),
        {"Fn::GetAtt": [function_id, "Arn"]},
    )
