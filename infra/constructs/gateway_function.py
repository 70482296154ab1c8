"""The gateway function: arm64, Python 3.13, the streaming-runtime layer, environment, exact IAM.

Contract with the runtime (functions/) and the layer (layers/streaming_runtime/):

- HANDLER is the importable handler; the layer's exec wrapper (STREAMING_RUNTIME_WRAPPER, set as
  `AWS_LAMBDA_EXEC_WRAPPER`) starts the streaming Runtime API loop that calls it.
  https://docs.aws.amazon.com/lambda/latest/dg/runtimes-modify.html
- The layer is the contents of `layers/streaming_runtime/`, extracted under `/opt/`: the wrapper
  `layers/streaming_runtime/streaming_runtime/exec_wrapper` runs as STREAMING_RUNTIME_WRAPPER.
- Both doors invoke with response streaming (Function URL RESPONSE_STREAM, REST STREAM), so the
  runtime is told to stream (STREAMING_RUNTIME_RESPONSE_MODE, docs/decisions/0001).
- The environment names below are the ones `mantle_gateway.settings` and Powertools read.

IAM: a role of our own instead of AWSLambdaBasicExecutionRole, so logging is granted on this
function's log group only; Mantle inference on the Mantle projects of one region and account
(reference/mantle-facts.md §3), or only on the projects the stage lists (`mantleProjects`);
DynamoDB is granted by the stack (GatewayTables).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import nag

HANDLER = "mantle_gateway.doors.lambda_entry.handler"
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
STREAMING_RUNTIME_WRAPPER = "/opt/streaming_runtime/exec_wrapper"

SERVICE_NAME = "mantle-gateway"
METRICS_NAMESPACE = "MantleGateway"

MANTLE_ACTIONS: tuple[str, ...] = (
    "bedrock-mantle:CreateInference",
    "bedrock-mantle:GetInference",
    "bedrock-mantle:CancelInference",
    "bedrock-mantle:DeleteInference",
    "bedrock-mantle:ListModels",
    "bedrock-mantle:GetModel",
    "bedrock-mantle:CountTokens",
)
"""CountTokens: `/anthropic/v1/messages/count_tokens` is its own action (service authorization
reference for bedrock-mantle; Claude Code's Mantle docs grant it beside CreateInference, which
covers `/anthropic/v1/messages` itself)."""


class GatewayFunction(Construct):
    """The one Lambda function behind both doors (Function URL and REST API)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage_name: str,
        code: lambda_.Code,
        layer_code: lambda_.Code,
        keys_table_name: str,
        usage_table_name: str,
        limits_table_name: str,
        enable_openai_passthrough: bool,
        enable_anthropic_passthrough: bool,
        log_level: str,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        memory_mb: int,
        timeout: Duration,
        default_rpm: int,
        default_tpm: int,
        mantle_region: str | None = None,
        mantle_endpoint_url: str | None = None,
        mantle_projects: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=removal_policy
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Mantle Gateway ({stage_name}): Mantle inference, its tables, its logs",
        )
        self.log_group.grant_write(self.role)

        self.layer = lambda_.LayerVersion(
            self,
            "StreamingRuntime",
            code=layer_code,
            compatible_architectures=[ARCHITECTURE],
            compatible_runtimes=[RUNTIME],
            description="Streaming Runtime API loop started through AWS_LAMBDA_EXEC_WRAPPER",
            removal_policy=RemovalPolicy.DESTROY,
        )

        self.function = lambda_.Function(
            self,
            "Function",
            function_name=f"mantle-gateway-{stage_name}",
            description=f"Mantle Gateway ({stage_name}): OpenAI-compatible proxy to Bedrock Mantle",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=code,
            layers=[self.layer],
            role=self.role,
            memory_size=memory_mb,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            environment=dict(
                gateway_environment(
                    keys_table_name=keys_table_name,
                    usage_table_name=usage_table_name,
                    limits_table_name=limits_table_name,
                    enable_openai_passthrough=enable_openai_passthrough,
                    enable_anthropic_passthrough=enable_anthropic_passthrough,
                    log_level=log_level,
                    default_rpm=default_rpm,
                    default_tpm=default_tpm,
                    mantle_region=mantle_region,
                    mantle_endpoint_url=mantle_endpoint_url,
                )
            ),
        )

        # `arn:<partition>:bedrock-mantle:<region>:<account>:project/<id>` (Service Authorization
        # Reference, bedrock-mantle resource types): the stage's projects, else all of them.
        project_arns = [
            stack.format_arn(
                service="bedrock-mantle",
                region=mantle_region or stack.region,
                resource="project",
                resource_name=project,
                arn_format=ArnFormat.SLASH_RESOURCE_NAME,
            )
            for project in mantle_projects or ("*",)
        ]
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(MANTLE_ACTIONS), resources=project_arns)
        )

        policy = self.role.node.find_child("DefaultPolicy")
        if not mantle_projects:
            nag.acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{nag_spelling(stack.resolve(project_arns[0]))}]",
                (
                    "Mantle authorises inference against a project ARN and requests may name any "
                    "project of this account (the default project id is `default`); the grant is "
                    "limited to one region and this account, and to the seven inference actions. "
                    "A stage that lists its `mantleProjects` gets those ARNs instead."
                ),
            )
        nag.acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            (
                "Added by `tracing=ACTIVE`: xray:PutTraceSegments and xray:PutTelemetryRecords "
                "do not support resource-level permissions, so X-Ray requires Resource '*'."
            ),
        )
        nag.acknowledge(
            self.function,
            "AwsSolutions-L1",
            (
                "Pinned to python3.13 on purpose: the bundle's wheels are built for cp313 and the "
                "streaming runtime layer targets 3.13; moving to a newer runtime is a deliberate "
                "upgrade (runtime, pip target and layer together), not a drift."
            ),
        )


def gateway_environment(
    *,
    keys_table_name: str,
    usage_table_name: str,
    limits_table_name: str,
    enable_openai_passthrough: bool,
    enable_anthropic_passthrough: bool,
    log_level: str,
    default_rpm: int,
    default_tpm: int,
    mantle_region: str | None,
    mantle_endpoint_url: str | None,
) -> Mapping[str, str]:
    """The function's environment (DESIGN §7), one place for every name the runtime reads."""
    env = {
        "AWS_LAMBDA_EXEC_WRAPPER": STREAMING_RUNTIME_WRAPPER,
        "STREAMING_RUNTIME_RESPONSE_MODE": "streaming",
        "KEYS_TABLE": keys_table_name,
        "USAGE_TABLE": usage_table_name,
        "LIMITS_TABLE": limits_table_name,
        "ENABLE_OPENAI_PASSTHROUGH": "true" if enable_openai_passthrough else "false",
        "ENABLE_ANTHROPIC_PASSTHROUGH": "true" if enable_anthropic_passthrough else "false",
        "LOG_LEVEL": log_level,
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "DEFAULT_KEY_RPM": str(default_rpm),
        "DEFAULT_KEY_TPM": str(default_tpm),
    }
    if mantle_region:
        env["MANTLE_REGION"] = mantle_region
    endpoint = mantle_endpoint_url or (
        f"https://bedrock-mantle.{mantle_region}.api.aws" if mantle_region else None
    )
    if endpoint:
        env["MANTLE_ENDPOINT_URL"] = endpoint
    return env


def nag_spelling(resolved: object) -> str:
    """An ARN as cdk-nag spells it in a finding id: joins flattened, `{"Ref": X}` as `<X>`."""
    if isinstance(resolved, str):
        return resolved
    if isinstance(resolved, dict) and "Fn::Join" in resolved:
        separator, parts = resolved["Fn::Join"]
        return str(separator).join(nag_spelling(part) for part in parts)
    if isinstance(resolved, dict) and "Ref" in resolved:
        return f"<{resolved['Ref']}>"
    raise ValueError(f"cannot spell {resolved!r} the way cdk-nag does")
