"""Function URL door: RESPONSE_STREAM, auth NONE, both invoke permissions, sensible CORS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from infra.constructs.function_url import EXPOSED_HEADERS, GatewayFunctionUrl

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
    assert cors["ExposeHeaders"] == list(EXPOSED_HEADERS)
    assert "retry-after" in cors["ExposeHeaders"]
    assert restricted["AllowOrigins"] == ["https://app.example.com"]


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
