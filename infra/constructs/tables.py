"""Keys, usage and limits tables: key names, indexes and TTL from `mantle_gateway.schema` only.

All three are on-demand (traffic is spiky and small), encrypted with the AWS-managed key
(`aws/dynamodb`: the key is auditable in CloudTrail, needs no key policy of ours and costs nothing
per month), and get point-in-time recovery and deletion protection as the stage says.

`grant_gateway_runtime` is the exact DynamoDB access the Lambda needs, and nothing else. It was
read off the runtime's store modules (functions/mantle_gateway/store/):

keys    GetItem                the key lookup by digest (core/auth via store/keys). Creating,
                               listing, revoking keys is the CLI's job, run with operator
                               credentials — the function cannot mint or revoke keys.
usage   PutItem, GetItem,      the usage item (the `Put` of the ledger's TransactWriteItems, with
        UpdateItem             `attribute_not_exists`), and the stored-response owner items
                               (store/responses: put on create, consistent get on read, update
                               when a background response's pending bill is settled).
limits  GetItem, UpdateItem    admission (one conditional update of the key's month item:
                               rate window and budget reservation), releases, and the
                               spend/token `Update` inside the ledger transaction.

TransactWriteItems has no IAM action of its own: each element is authorised as its item action
(Put → PutItem, Update → UpdateItem, ConditionCheck → ConditionCheckItem). The ledger uses no
ConditionCheck element, nothing deletes items (owner items expire by TTL), and
nothing on the request path queries or scans — the `key_id-index` and `month-index` serve the CLI
and finance — so no index ARN, Query, Scan, DeleteItem or batch action is granted.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import nag
from mantle_gateway import schema

RUNTIME_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "keys": ("dynamodb:GetItem",),
    "usage": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
    "limits": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
}

_STRING = dynamodb.AttributeType.STRING


class GatewayTables(Construct):
    """The three tables of DESIGN §5, named `<schema default>-<stage>`: mantle-gateway-keys-dev."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage_name: str,
        removal_policy: RemovalPolicy,
        point_in_time_recovery: bool,
        deletion_protection: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self._pitr = point_in_time_recovery
        self._deletion_protection = deletion_protection
        self._removal_policy = removal_policy

        self.keys = self._table(
            "Keys",
            name=f"{schema.DEFAULT_KEYS_TABLE}-{stage_name}",
            partition_key=schema.KEYS_PK,
        )
        self.keys.add_global_secondary_index(
            index_name=schema.KEYS_ID_INDEX,
            partition_key=dynamodb.Attribute(name=schema.KEYS_ID_ATTR, type=_STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )

        self.usage = self._table(
            "Usage",
            name=f"{schema.DEFAULT_USAGE_TABLE}-{stage_name}",
            partition_key=schema.USAGE_PK,
            sort_key=schema.USAGE_SK,
            ttl=schema.USAGE_TTL_ATTR,
        )
        # ALL: finance reads every field of a month's items from this index in one query.
        self.usage.add_global_secondary_index(
            index_name=schema.USAGE_MONTH_INDEX,
            partition_key=dynamodb.Attribute(name=schema.USAGE_MONTH_ATTR, type=_STRING),
            sort_key=dynamodb.Attribute(name=schema.USAGE_SK, type=_STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )

        self.limits = self._table(
            "Limits",
            name=f"{schema.DEFAULT_LIMITS_TABLE}-{stage_name}",
            partition_key=schema.LIMITS_PK,
        )

    def _table(
        self,
        construct_id: str,
        *,
        name: str,
        partition_key: str,
        sort_key: str | None = None,
        ttl: str | None = None,
    ) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            construct_id,
            table_name=name,
            partition_key=dynamodb.Attribute(name=partition_key, type=_STRING),
            sort_key=dynamodb.Attribute(name=sort_key, type=_STRING) if sort_key else None,
            time_to_live_attribute=ttl,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=self._pitr
            ),
            deletion_protection=self._deletion_protection,
            removal_policy=self._removal_policy,
        )
        if not self._pitr:
            nag.acknowledge(
                table,
                "AwsSolutions-DDB3",
                (
                    "Point-in-time recovery is switched off for this stage in cdk.json (`pitr`), "
                    "a throw-away stage whose data is re-creatable; stages holding real keys and "
                    "usage (prod) enable it."
                ),
            )
        return table

    @property
    def tables(self) -> dict[str, dynamodb.Table]:
        return {"keys": self.keys, "usage": self.usage, "limits": self.limits}

    def grant_gateway_runtime(self, grantee: iam.IGrantable) -> None:
        """Exactly RUNTIME_ACTIONS on exactly the three table ARNs (no index ARNs)."""
        for role, table in self.tables.items():
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=list(RUNTIME_ACTIONS[role]),
                resource_arns=[table.table_arn],
            )
