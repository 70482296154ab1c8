"""REST API door: REGIONAL, STREAM transfer mode, /openai/v1, /v1 and /health, logs, throttling."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from mantle_gateway.doors import rest_api
from mantle_gateway.settings import Settings

if TYPE_CHECKING:
    from conftest import Synthesis

STAGES = ("dev", "prod", "flagoff")


def method_paths(synth: Synthesis, stage: str) -> dict[tuple[str, str], dict[str, Any]]:
    """{(HTTP method, full path): method properties}, rebuilt from the Resource parent chain."""
    resources = synth.resources(stage, "gateway", "AWS::ApiGateway::Resource")

    def path(resource_id: str) -> str:
        props = resources[resource_id]["Properties"]
        parent = props["ParentId"]
        prefix = "" if "Fn::GetAtt" in parent else path(parent["Ref"])
        return f"{prefix}/{props['PathPart']}"

    methods = synth.resources(stage, "gateway", "AWS::ApiGateway::Method")
    return {
        (m["Properties"]["HttpMethod"], path(m["Properties"]["ResourceId"]["Ref"])): m["Properties"]
        for m in methods.values()
    }


REGIONAL_STREAM_IDLE_SECONDS = 300
"""API Gateway ends a REST stream idle this long on regional and private endpoints (30 s on
edge-optimized ones): https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode.html"""
LAMBDA_INIT_LIMIT_SECONDS = 10
"""A cold start's init phase may use this much of the silence before the function runs."""


@pytest.mark.parametrize("stage", STAGES)
def test_the_rest_door_gives_up_on_a_silent_upstream_before_api_gateway_does(
    synth: Synthesis, stage: str
) -> None:
    _, api = synth.one(stage, "gateway", "AWS::ApiGateway::RestApi")

    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    connect = Settings().upstream_connect_timeout_seconds
    worst_silence = LAMBDA_INIT_LIMIT_SECONDS + connect + rest_api.MAX_SILENCE_SECONDS
    assert worst_silence <= REGIONAL_STREAM_IDLE_SECONDS


@pytest.mark.parametrize("stage", STAGES)
def test_api_is_regional(synth: Synthesis, stage: str) -> None:
    _, api = synth.one(stage, "gateway", "AWS::ApiGateway::RestApi")

    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert api["Properties"]["Name"] == f"mantle-gateway-{stage}"


@pytest.mark.parametrize("stage", STAGES)
def test_routes_are_openai_v1_v1_anthropic_and_health(synth: Synthesis, stage: str) -> None:
    assert set(method_paths(synth, stage)) == {
        ("ANY", "/openai/v1/{proxy+}"),
        ("ANY", "/v1/{proxy+}"),
        ("ANY", "/anthropic/{proxy+}"),
        ("GET", "/health"),
    }


@pytest.mark.parametrize(("stage", "timeout_ms"), [("dev", 300_000), ("prod", 600_000)])
def test_every_method_streams_from_the_function_past_29_seconds(
    synth: Synthesis, stage: str, timeout_ms: int
) -> None:
    function_id, _ = synth.one(stage, "gateway", "AWS::Lambda::Function")

    for method in method_paths(synth, stage).values():
        integration = method["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert integration["ResponseTransferMode"] == "STREAM"
        assert integration["TimeoutInMillis"] == timeout_ms > 29_000
        uri = json.dumps(integration["Uri"])
        assert "/2021-11-15/functions/" in uri
        assert uri.endswith('"/response-streaming-invocations"]]}')
        assert f'"Fn::GetAtt": ["{function_id}", "Arn"]' in uri
        assert method["AuthorizationType"] == "NONE"


@pytest.mark.parametrize("stage", STAGES)
def test_api_gateway_may_invoke_the_function_per_method_only(synth: Synthesis, stage: str) -> None:
    permissions = [
        p["Properties"]
        for p in synth.resources(stage, "gateway", "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]

    assert len(permissions) == 8  # 4 methods x (stage + console test-invoke)
    assert {p["Action"] for p in permissions} == {"lambda:InvokeFunction"}
    assert all("SourceArn" in p for p in permissions)


@pytest.mark.parametrize(
    ("stage", "rate", "burst", "retention"),
    [("dev", 50, 100, 7), ("prod", 50, 100, 30)],
)
def test_stage_is_named_after_the_stage_with_logs_tracing_and_throttling(
    synth: Synthesis, stage: str, rate: int, burst: int, retention: int
) -> None:
    _, api_stage = synth.one(stage, "gateway", "AWS::ApiGateway::Stage")
    groups = synth.resources(stage, "gateway", "AWS::Logs::LogGroup")

    props = api_stage["Properties"]
    assert props["StageName"] == stage
    assert props["TracingEnabled"] is True
    access_group = props["AccessLogSetting"]["DestinationArn"]
    assert json.loads(props["AccessLogSetting"]["Format"])["status"] == "$context.status"
    (settings,) = props["MethodSettings"]
    assert settings["HttpMethod"] == "*"
    assert settings["ResourcePath"] == "/*"
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (rate, burst)
    assert access_group
    execution = [
        g
        for g in groups.values()
        if "API-Gateway-Execution-Logs_" in json.dumps(g["Properties"].get("LogGroupName", ""))
    ]
    assert len(execution) == 1
    assert execution[0]["Properties"]["RetentionInDays"] == retention
