"""GatewayStack: the function, its two doors and monitoring; wires the table grants and outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Fn, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.cdk_values import log_retention, removal_policy
from infra.constructs.budget_alerts import BudgetAlerts
from infra.constructs.function_url import GatewayFunctionUrl
from infra.constructs.gateway_function import METRICS_NAMESPACE, SERVICE_NAME, GatewayFunction
from infra.constructs.monitoring import GatewayMonitoring
from infra.constructs.rest_api import GatewayRestApi
from infra.constructs.tables import GatewayTables
from infra.stages import StageConfig


class GatewayStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        tables: GatewayTables,
        code: lambda_.Code,
        layer_code: lambda_.Code,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retention = log_retention(config)
        removal = removal_policy(config)
        timeout = Duration.seconds(config.lambda_timeout_seconds)

        gateway = GatewayFunction(
            self,
            "Gateway",
            stage_name=config.name,
            code=code,
            layer_code=layer_code,
            keys_table_name=tables.keys.table_name,
            usage_table_name=tables.usage.table_name,
            limits_table_name=tables.limits.table_name,
            enable_openai_passthrough=config.enable_openai_passthrough,
            enable_anthropic_passthrough=config.enable_anthropic_passthrough,
            log_level=config.log_level,
            log_retention=retention,
            removal_policy=removal,
            memory_mb=config.lambda_memory_mb,
            timeout=timeout,
            default_rpm=config.default_rpm,
            default_tpm=config.default_tpm,
            mantle_region=config.mantle_region,
            mantle_endpoint_url=config.mantle_endpoint_url,
            mantle_projects=config.mantle_projects,
        )
        tables.grant_gateway_runtime(gateway.function)

        url = GatewayFunctionUrl(
            self,
            "FunctionUrlDoor",
            function=gateway.function,
            allowed_origins=config.cors_allowed_origins,
        )
        rest = GatewayRestApi(
            self,
            "RestApiDoor",
            function=gateway.function,
            stage_name=config.name,
            # STREAM allows up to 15 min; match the function so neither side cuts the other.
            integration_timeout=timeout,
            throttle_rate_limit=config.api_throttle_rate_limit,
            throttle_burst_limit=config.api_throttle_burst_limit,
            log_retention=retention,
            removal_policy=removal,
        )
        monitoring = GatewayMonitoring(
            self,
            "Monitoring",
            stage_name=config.name,
            function=gateway.function,
            rest_api=rest.api,
            metrics_namespace=METRICS_NAMESPACE,
            service_name=SERVICE_NAME,
            alarms_enabled=config.alarms,
            alarm_email=config.alarm_email,
        )
        BudgetAlerts(
            self,
            "BudgetAlerts",
            stage_name=config.name,
            function=gateway.function,
            thresholds=config.budget_alert_thresholds,
            topic=monitoring.topic,
        )

        CfnOutput(self, "FunctionUrl", value=url.url.url, description="Function URL (streaming)")
        CfnOutput(
            self,
            "OpenAiBaseUrl",
            value=Fn.join("", [url.url.url, "openai/v1"]),
            description="base_url for OpenAI SDKs through the Function URL",
        )
        CfnOutput(
            self,
            "AnthropicBaseUrl",
            value=Fn.join("", [url.url.url, "anthropic"]),
            description="base URL for Anthropic SDKs and Claude Code through the Function URL",
        )
        CfnOutput(self, "RestApiUrl", value=rest.api.url, description="REST API stage URL")
        CfnOutput(
            self,
            "RestApiOpenAiBaseUrl",
            value=rest.openai_base_url,
            description="base_url for OpenAI SDKs through the REST API",
        )
        CfnOutput(
            self,
            "RestApiAnthropicBaseUrl",
            value=rest.anthropic_base_url,
            description="base URL for Anthropic SDKs and Claude Code through the REST API",
        )
        CfnOutput(self, "FunctionName", value=gateway.function.function_name)
