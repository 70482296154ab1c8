"""Tables: keys, indexes, TTL from mantle_gateway.schema; on-demand, encrypted; PITR per stage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from mantle_gateway import schema

if TYPE_CHECKING:
    from conftest import Synthesis

STAGES = ("dev", "prod", "flagoff")


def table(synth: Synthesis, stage: str, name: str) -> dict[str, Any]:
    for resource in synth.resources(stage, "data", "AWS::DynamoDB::Table").values():
        if resource["Properties"]["TableName"] == f"{name}-{stage}":
            return resource
    raise AssertionError(f"no table {name}-{stage}")


def attributes(properties: dict[str, Any]) -> dict[str, str]:
    return {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]}


def key_schema(keys: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in keys]


@pytest.mark.parametrize("stage", STAGES)
def test_keys_table_is_looked_up_by_digest_with_a_key_id_index(
    synth: Synthesis, stage: str
) -> None:
    props = table(synth, stage, schema.DEFAULT_KEYS_TABLE)["Properties"]

    assert key_schema(props["KeySchema"]) == [(schema.KEYS_PK, "HASH")]
    assert attributes(props) == {schema.KEYS_PK: "S", schema.KEYS_ID_ATTR: "S"}
    (index,) = props["GlobalSecondaryIndexes"]
    assert index["IndexName"] == schema.KEYS_ID_INDEX
    assert key_schema(index["KeySchema"]) == [(schema.KEYS_ID_ATTR, "HASH")]
    assert "TimeToLiveSpecification" not in props


@pytest.mark.parametrize("stage", STAGES)
def test_usage_table_has_pk_sk_month_index_and_ttl(synth: Synthesis, stage: str) -> None:
    props = table(synth, stage, schema.DEFAULT_USAGE_TABLE)["Properties"]

    assert key_schema(props["KeySchema"]) == [(schema.USAGE_PK, "HASH"), (schema.USAGE_SK, "RANGE")]
    assert attributes(props) == {
        schema.USAGE_PK: "S",
        schema.USAGE_SK: "S",
        schema.USAGE_MONTH_ATTR: "S",
    }
    (index,) = props["GlobalSecondaryIndexes"]
    assert index["IndexName"] == schema.USAGE_MONTH_INDEX
    assert key_schema(index["KeySchema"]) == [
        (schema.USAGE_MONTH_ATTR, "HASH"),
        (schema.USAGE_SK, "RANGE"),
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    assert props["TimeToLiveSpecification"] == {
        "AttributeName": schema.USAGE_TTL_ATTR,
        "Enabled": True,
    }


@pytest.mark.parametrize("stage", STAGES)
def test_limits_table_has_pk_and_no_ttl(synth: Synthesis, stage: str) -> None:
    """Rate windows live inside the month items and are reset in place: nothing expires."""
    props = table(synth, stage, schema.DEFAULT_LIMITS_TABLE)["Properties"]

    assert key_schema(props["KeySchema"]) == [(schema.LIMITS_PK, "HASH")]
    assert attributes(props) == {schema.LIMITS_PK: "S"}
    assert "GlobalSecondaryIndexes" not in props
    assert "TimeToLiveSpecification" not in props


@pytest.mark.parametrize(
    ("stage", "pitr", "protected", "deletion_policy"),
    [
        ("dev", False, False, "Delete"),
        ("prod", True, True, "Retain"),
        ("flagoff", True, False, "Delete"),
    ],
)
def test_tables_follow_the_stage_for_pitr_deletion_protection_and_removal(
    synth: Synthesis, stage: str, pitr: bool, protected: bool, deletion_policy: str
) -> None:
    tables = synth.resources(stage, "data", "AWS::DynamoDB::Table")

    assert len(tables) == 3
    for resource in tables.values():
        props = resource["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        # SSEEnabled alone = KMS with the AWS-managed key aws/dynamodb (no KMSMasterKeyId).
        assert props["SSESpecification"] == {"SSEEnabled": True}
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": pitr}
        assert props["DeletionProtectionEnabled"] is protected
        assert resource["DeletionPolicy"] == deletion_policy
        assert resource["UpdateReplacePolicy"] == deletion_policy


def test_prod_data_stack_is_termination_protected(synth: Synthesis) -> None:
    assert synth.stages["prod"].data.termination_protection is True
    assert synth.stages["dev"].data.termination_protection is False


def test_data_stack_outputs_the_table_names(synth: Synthesis) -> None:
    outputs = synth.template("prod", "data").find_outputs("*")
    ids = synth.table_logical_ids("prod")

    for output, role in (
        ("KeysTableName", "keys"),
        ("UsageTableName", "usage"),
        ("LimitsTableName", "limits"),
    ):
        assert outputs[output]["Value"] == {"Ref": ids[role]}
