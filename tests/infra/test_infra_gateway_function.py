"""The function: arm64, python3.13, layer, environment per stage, and exact IAM."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from infra.constructs.gateway_function import (
    HANDLER,
    MANTLE_ACTIONS,
    STREAMING_RUNTIME_WRAPPER,
)
from infra.constructs.tables import RUNTIME_ACTIONS

if TYPE_CHECKING:
    from conftest import Synthesis

STAGES = ("dev", "prod", "flagoff")


@pytest.mark.parametrize("stage", STAGES)
def test_function_is_arm64_python313_with_the_streaming_layer(synth: Synthesis, stage: str) -> None:
    fn = synth.function(stage)
    layer_id, layer = synth.one(stage, "gateway", "AWS::Lambda::LayerVersion")

    assert fn["Architectures"] == ["arm64"]
    assert fn["Runtime"] == "python3.13"
    assert fn["Handler"] == HANDLER == "mantle_gateway.doors.lambda_entry.handler"
    assert fn["TracingConfig"] == {"Mode": "Active"}
    assert fn["Layers"] == [{"Ref": layer_id}]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]


@pytest.mark.parametrize(
    ("stage", "timeout", "memory", "retention"),
    [("dev", 300, 1024, 7), ("prod", 600, 1024, 30), ("flagoff", 120, 512, 14)],
)
def test_timeout_memory_and_log_retention_follow_the_stage(
    synth: Synthesis, stage: str, timeout: int, memory: int, retention: int
) -> None:
    fn = synth.function(stage)
    groups = synth.resources(stage, "gateway", "AWS::Logs::LogGroup")
    log_group_id = fn["LoggingConfig"]["LogGroup"]["Ref"]

    assert (fn["Timeout"], fn["MemorySize"]) == (timeout, memory)
    assert groups[log_group_id]["Properties"]["RetentionInDays"] == retention
    assert all(g["Properties"]["RetentionInDays"] == retention for g in groups.values())


@pytest.mark.parametrize(
    ("stage", "flag"), [("dev", "true"), ("prod", "true"), ("flagoff", "false")]
)
def test_passthrough_flags_reach_the_function_environment(
    synth: Synthesis, stage: str, flag: str
) -> None:
    assert synth.environment(stage)["ENABLE_OPENAI_PASSTHROUGH"] == flag
    assert synth.environment(stage)["ENABLE_ANTHROPIC_PASSTHROUGH"] == flag


@pytest.mark.parametrize("stage", STAGES)
def test_environment_names_the_stage_tables_and_the_runtime_contract(
    synth: Synthesis, stage: str
) -> None:
    env = synth.environment(stage)
    ids = synth.table_logical_ids(stage)

    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == STREAMING_RUNTIME_WRAPPER
    assert env["STREAMING_RUNTIME_RESPONSE_MODE"] == "streaming"
    assert env["POWERTOOLS_SERVICE_NAME"] == "mantle-gateway"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "MantleGateway"
    assert env["LOG_LEVEL"] in {"DEBUG", "INFO"}
    for variable, role in (
        ("KEYS_TABLE", "keys"),
        ("USAGE_TABLE", "usage"),
        ("LIMITS_TABLE", "limits"),
    ):
        reference = json.dumps(env[variable])
        assert f"Ref{ids[role]}" in reference, f"{variable} does not name the {role} table"


def test_mantle_endpoint_is_set_only_when_the_stage_sets_it(synth: Synthesis) -> None:
    assert "MANTLE_ENDPOINT_URL" not in synth.environment("dev")
    assert "MANTLE_ENDPOINT_URL" not in synth.environment("prod")
    flagoff = synth.environment("flagoff")
    assert flagoff["MANTLE_ENDPOINT_URL"] == "https://mantle.internal.example.com"
    assert flagoff["MANTLE_REGION"] == "eu-central-1"
    assert (flagoff["DEFAULT_KEY_RPM"], flagoff["DEFAULT_KEY_TPM"]) == ("10", "10000")


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def resources(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


@pytest.mark.parametrize("stage", STAGES)
def test_mantle_actions_are_exact_and_scoped_to_the_stage_projects(
    synth: Synthesis, stage: str
) -> None:
    mantle = [s for s in synth.statements(stage) if actions(s)[0].startswith("bedrock-mantle:")]

    assert len(mantle) == 1
    (statement,) = mantle
    assert sorted(actions(statement)) == sorted(MANTLE_ACTIONS)
    assert sorted(MANTLE_ACTIONS) == sorted(
        f"bedrock-mantle:{a}"
        for a in (
            "CreateInference",
            "GetInference",
            "CancelInference",
            "DeleteInference",
            "ListModels",
            "GetModel",
            "CountTokens",  # /anthropic/v1/messages/count_tokens
        )
    )
    if stage == "flagoff":  # mantleProjects listed, account, region, mantleRegion: literals
        assert resources(statement) == [
            "arn:aws:bedrock-mantle:eu-central-1:123456789012:project/default",
            "arn:aws:bedrock-mantle:eu-central-1:123456789012:project/proj_finance01",
        ]
    else:  # no list, environment-agnostic: any project of the stack's partition, region, account
        (resource,) = resources(statement)
        assert resource == {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":bedrock-mantle:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    ":project/*",
                ],
            ]
        }


@pytest.mark.parametrize("stage", STAGES)
def test_dynamodb_access_is_exactly_the_runtime_actions_on_the_three_tables(
    synth: Synthesis, stage: str
) -> None:
    ids = synth.table_logical_ids(stage)
    granted: dict[str, set[str]] = {}
    for statement in synth.statements(stage):
        for action in actions(statement):
            if not action.startswith("dynamodb:"):
                continue
            for resource in resources(statement):
                text = json.dumps(resource)
                (role,) = [r for r, logical_id in ids.items() if f"FnGetAtt{logical_id}Arn" in text]
                assert "index" not in text.lower()
                granted.setdefault(role, set()).add(action)

    assert granted == {role: set(acts) for role, acts in RUNTIME_ACTIONS.items()}
    assert granted == {
        "keys": {"dynamodb:GetItem"},
        "usage": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        "limits": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
    }


@pytest.mark.parametrize("stage", STAGES)
def test_only_xray_uses_a_wildcard_resource_and_no_managed_policy_is_attached(
    synth: Synthesis, stage: str
) -> None:
    wildcard = [s for s in synth.statements(stage) if "*" in resources(s)]
    roles = synth.resources(stage, "gateway", "AWS::IAM::Role")
    fn_role = synth.function(stage)["Role"]["Fn::GetAtt"][0]

    assert [sorted(actions(s)) for s in wildcard] == [
        ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    ]
    assert "ManagedPolicyArns" not in roles[fn_role]["Properties"]
    log_statement = next(s for s in synth.statements(stage) if "logs:PutLogEvents" in actions(s))
    assert log_statement["Resource"] == {
        "Fn::GetAtt": [synth.function(stage)["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]
    }
