"""DataStack: the stage's DynamoDB tables, in a stack of their own.

Apart from the gateway so that the function, URL and API can be replaced or destroyed freely
while keys, usage and spend stay (prod retains them and protects them from deletion).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.cdk_values import removal_policy
from infra.constructs.tables import GatewayTables
from infra.stages import StageConfig


class DataStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.tables = GatewayTables(
            self,
            "Tables",
            stage_name=config.name,
            removal_policy=removal_policy(config),
            point_in_time_recovery=config.pitr,
            deletion_protection=config.deletion_protection,
        )
        for output_id, table in (
            ("KeysTableName", self.tables.keys),
            ("UsageTableName", self.tables.usage),
            ("LimitsTableName", self.tables.limits),
        ):
            CfnOutput(self, output_id, value=table.table_name)
