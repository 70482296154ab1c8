"""Shared fixtures: environment isolation for every test.

Every test starts from an environment with fake AWS credentials, a fixed region and none of the
gateway's variables, so nothing on the developer's machine (a real AWS profile, a stray
AWS_ENDPOINT_URL_DYNAMODB) can change an outcome or reach a real AWS account.
"""

import pytest

_GATEWAY_VARS = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "MANTLE_ENDPOINT_URL",
    "KEYS_TABLE",
    "USAGE_TABLE",
    "LIMITS_TABLE",
    "ENABLE_OPENAI_PASSTHROUGH",
    "ENABLE_ANTHROPIC_PASSTHROUGH",
    "BEDROCK_API_KEY",
    "AWS_BEARER_TOKEN_BEDROCK",
    "PRICES_JSON",
    "MANTLE_ROUTE_RULES",
    "BUDGET_ALERT_THRESHOLDS",
    "BUDGET_ALERT_EVENTS",
    "AWS_ENDPOINT_URL_EVENTS",
    "GATEWAY_STAGE",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _GATEWAY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "MantleGatewayTests")
