"""Function URL door: RESPONSE_STREAM, auth NONE, and both invoke permissions new URLs need.

Auth NONE because the function authenticates every request with a gateway key (DESIGN §5); a
SigV4-only URL would shut out every OpenAI SDK. Since October 2025 a new URL needs two
resource-policy statements (https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html):
`lambda:InvokeFunctionUrl` (FunctionUrlAuthType NONE) and `lambda:InvokeFunction` conditioned on
`lambda:InvokedViaFunctionUrl`, so the public grant cannot be used to invoke the function
directly. aws-cdk-lib 2.275 adds both for an auth-NONE `FunctionUrl` (aws/aws-cdk#35725);
tests/infra asserts that, so a CDK change that drops one fails the build instead of a deploy.

CORS: keys travel in headers, never in cookies, so any origin may call with credentials off.

- Allowed request headers: `Access-Control-Allow-Headers: *` covers every header but
  `Authorization`, which the Fetch standard never lets a wildcard cover (MDN,
  Access-Control-Allow-Headers), so OpenAI SDKs in a browser (`Authorization: Bearer`) failed
  their preflight. `ALLOWED_HEADERS` names every header the gateway reads or forwards upstream
  (CORS has no prefix patterns, so each forwarded `x-amzn-bedrock-*` / `x-amzn-mantle-*` header
  that AWS documents is listed by name), and keeps the `*` for the headers browsers' SDKs add that
  the gateway ignores (`x-stainless-*`, `openai-beta`, `anthropic-dangerous-direct-browser-access`),
  which would otherwise fail the preflight of every such client.
- Exposed response headers: the rate-limit headers (OpenAI's and Anthropic's), `retry-after` and
  the request ids clients read (a browser hides every other non-safelisted response header from
  scripts).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

ALLOWED_HEADERS: tuple[str, ...] = (
    # the gateway key (core/auth.py) and the JSON body
    "authorization",
    "x-api-key",
    "content-type",
    # forwarded to Mantle (upstream/signing.py): project, and the Bedrock headers AWS documents
    "openai-project",
    "x-amzn-bedrock-guardrailidentifier",
    "x-amzn-bedrock-guardrailversion",
    "x-amzn-bedrock-trace",
    "x-amzn-bedrock-performanceconfig-latency",
    "x-amzn-bedrock-service-tier",
    "x-amzn-mantle-client-agent",
    # kept by the Anthropic Messages passthrough under /anthropic/ (DESIGN §3)
    "anthropic-version",
    "anthropic-beta",
    # every other header (SDK telemetry): matched by the wildcard, never Authorization
    "*",
)

EXPOSED_HEADERS: tuple[str, ...] = (
    "x-request-id",
    "x-gateway-request-id",
    "x-amzn-requestid",
    "retry-after",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
)


class GatewayFunctionUrl(Construct):
    """The streaming public URL of the gateway function (`<url>/openai/v1` is the OpenAI base
    URL, `<url>/anthropic` the Anthropic one)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        allowed_origins: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.url = lambda_.FunctionUrl(
            self,
            "Url",
            function=function,
            auth_type=lambda_.FunctionUrlAuthType.NONE,
            invoke_mode=lambda_.InvokeMode.RESPONSE_STREAM,
            cors=lambda_.FunctionUrlCorsOptions(
                allowed_origins=list(allowed_origins),
                allowed_methods=[
                    lambda_.HttpMethod.GET,
                    lambda_.HttpMethod.POST,
                    lambda_.HttpMethod.DELETE,
                ],
                allowed_headers=list(ALLOWED_HEADERS),
                exposed_headers=list(EXPOSED_HEADERS),
                allow_credentials=False,
                max_age=Duration.hours(1),
            ),
        )
