"""REST API door: REGIONAL endpoint, STREAM transfer mode, `/openai/v1`, `/v1`, `/anthropic` and
`/health`.

- REGIONAL, not CDK's default EDGE: edge-optimized endpoints cut a stream that is idle for 30 s,
  regional ones after 5 min (reference/lambda-streaming-facts.md §2.1).
- `ResponseTransferMode.STREAM` makes API Gateway call InvokeWithResponseStream
  (`.../2021-11-15/functions/<arn>/response-streaming-invocations`), which allows an integration
  timeout up to 15 min without a quota increase; CDK 2.275 accepts > 29 s with STREAM at synth.
- `ANY /openai/v1/{proxy+}`, `ANY /v1/{proxy+}` and `ANY /anthropic/{proxy+}` (Anthropic
  clients take base URL `<stage URL>/anthropic` and add `/v1/messages`): the gateway answers
  404/405 itself, shaped like the API of the prefix, so API Gateway does no routing of its own
  beyond the prefixes.
- Access logs (JSON, no headers, so no keys) and ERROR-level execution logs, both with the
  stage's retention; stage throttling as a coarse shield in front of the per-key limits.
- CORS is not configured here: browser clients use the Function URL, which answers preflights
  itself; this door is for servers, custom domains and WAF.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, Fn, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import nag

ACCESS_LOG_FIELDS = {
    "requestId": apigw.AccessLogField.context_request_id(),
    "ip": apigw.AccessLogField.context_identity_source_ip(),
    "requestTime": apigw.AccessLogField.context_request_time(),
    "httpMethod": apigw.AccessLogField.context_http_method(),
    "path": apigw.AccessLogField.context_path(),
    "status": apigw.AccessLogField.context_status(),
    "protocol": apigw.AccessLogField.context_protocol(),
    "responseLength": apigw.AccessLogField.context_response_length(),
    "responseLatency": apigw.AccessLogField.context_response_latency(),
    "integrationLatency": apigw.AccessLogField.context_integration_latency(),
    "integrationStatus": apigw.AccessLogField.context_integration_status(),
    "errorMessage": apigw.AccessLogField.context_error_message(),
}


class GatewayRestApi(Construct):
    """The REST API in front of the gateway function, one API per stage."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        stage_name: str,
        integration_timeout: Duration,
        throttle_rate_limit: int,
        throttle_burst_limit: int,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=removal_policy
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"mantle-gateway-{stage_name}",
            description=f"Mantle Gateway ({stage_name}): OpenAI-compatible API, streaming",
            endpoint_configuration=apigw.EndpointConfiguration(types=[apigw.EndpointType.REGIONAL]),
            # Account-level role API Gateway needs to write any CloudWatch log; kept on delete
            # because it is shared by every API of the account and region.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # full request logging would write bodies and keys
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=throttle_rate_limit,
                throttling_burst_limit=throttle_burst_limit,
            ),
        )
        # API Gateway creates this group on first use with no retention; own it instead.
        self.execution_logs = logs.LogGroup(
            self,
            "ExecutionLogs",
            log_group_name=Fn.join(
                "", ["API-Gateway-Execution-Logs_", self.api.rest_api_id, f"/{stage_name}"]
            ),
            retention=log_retention,
            removal_policy=removal_policy,
        )
        self.api.deployment_stage.node.add_dependency(self.execution_logs)

        integration = apigw.LambdaIntegration(
            function,
            proxy=True,
            response_transfer_mode=apigw.ResponseTransferMode.STREAM,
            timeout=integration_timeout,
        )
        openai_v1 = self.api.root.add_resource("openai").add_resource("v1")
        openai_v1.add_proxy(default_integration=integration, any_method=True)
        self.api.root.add_resource("v1").add_proxy(default_integration=integration, any_method=True)
        anthropic = self.api.root.add_resource("anthropic")
        anthropic.add_proxy(default_integration=integration, any_method=True)
        self.api.root.add_resource("health").add_method("GET", integration)

        self._acknowledge()

    @property
    def openai_base_url(self) -> str:
        """`https://…/<stage>/openai/v1`: what an OpenAI SDK takes as base_url."""
        return Fn.join("", [self.api.url, "openai/v1"])

    @property
    def anthropic_base_url(self) -> str:
        """`https://…/<stage>/anthropic`: what an Anthropic SDK or Claude Code takes."""
        return Fn.join("", [self.api.url, "anthropic"])

    def _acknowledge(self) -> None:
        nag.acknowledge(
            self.api,
            "AwsSolutions-APIG2",
            (
                "Requests are validated by the gateway itself (JSON object, model present, size) "
                "so clients get 400/413 errors shaped like the API they speak (OpenAI or "
                "Anthropic); an API Gateway request validator would answer in its own format "
                "and duplicate the rules."
            ),
        )
        nag.acknowledge(
            self.api,
            "AwsSolutions-APIG3",
            (
                "WAF is optional per deployment (attach a regional WebACL to the stage); keys, "
                "per-key rate limits and budgets are enforced by the gateway across all "
                "instances, and stage throttling caps the rest."
            ),
        )
        nag.acknowledge(
            self.api,
            "AwsSolutions-APIG4",
            (
                "The function authenticates every request with a gateway API key (SHA-256 digest "
                "lookup in DynamoDB, `x-api-key` or `Authorization: Bearer`) exactly as OpenAI "
                "and Anthropic clients send it; `/health` is public by design (DESIGN §3)."
            ),
        )
        nag.acknowledge(
            self.api,
            "AwsSolutions-COG4",
            (
                "No Cognito: callers are programs holding gateway API keys, which the function "
                "verifies; OpenAI and Anthropic SDKs cannot obtain Cognito tokens."
            ),
        )
        role = self.api.node.find_child("CloudWatchRole")
        nag.acknowledge(
            role,
            (
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]"
            ),
            (
                "The account-level role API Gateway assumes to write access and execution logs; "
                "this AWS-managed policy is the one AWS documents for it and holds only "
                "CloudWatch Logs actions."
            ),
        )
