"""Settings are parsed once; a bad variable fails at start with one line naming it."""

import pytest

from mantle_gateway.errors import ConfigError
from mantle_gateway.settings import DEFAULT_ROUTE_RULES, Settings


def test_defaults_follow_the_region() -> None:
    settings = Settings.from_env({"AWS_REGION": "eu-west-1"})
    assert settings.mantle_endpoint_url == "https://bedrock-mantle.eu-west-1.api.aws"
    assert settings.keys_table == "mantle-gateway-keys"
    assert settings.usage_table == "mantle-gateway-usage"
    assert settings.limits_table == "mantle-gateway-limits"
    assert settings.enable_openai_passthrough is True
    assert settings.enable_anthropic_passthrough is True
    assert settings.dynamodb_endpoint_url is None


def test_endpoint_override_and_tables() -> None:
    settings = Settings.from_env(
        {
            "AWS_REGION": "us-east-2",
            "MANTLE_ENDPOINT_URL": "http://127.0.0.1:9999/",
            "KEYS_TABLE": "k-table",
            "ENABLE_OPENAI_PASSTHROUGH": "false",
            "ENABLE_ANTHROPIC_PASSTHROUGH": "off",
            "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:5000",
        }
    )
    assert settings.mantle_endpoint_url == "http://127.0.0.1:9999"
    assert settings.keys_table == "k-table"
    assert settings.enable_openai_passthrough is False
    assert settings.enable_anthropic_passthrough is False
    assert settings.dynamodb_endpoint_url == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"AWS_REGION": "mars"}, "AWS_REGION"),
        ({"ENABLE_OPENAI_PASSTHROUGH": "maybe"}, "ENABLE_OPENAI_PASSTHROUGH"),
        ({"ENABLE_ANTHROPIC_PASSTHROUGH": "perhaps"}, "ENABLE_ANTHROPIC_PASSTHROUGH"),
        ({"KEY_CACHE_TTL_SECONDS": "120"}, "KEY_CACHE_TTL_SECONDS"),
        ({"KEY_CACHE_TTL_SECONDS": "soon"}, "KEY_CACHE_TTL_SECONDS"),
        ({"MANTLE_ENDPOINT_URL": "ftp://x"}, "MANTLE_ENDPOINT_URL"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"USAGE_TABLE": "a b"}, "USAGE_TABLE"),
        ({"MANTLE_ROUTE_RULES": "x.*=/v2"}, "MANTLE_ROUTE_RULES"),
        ({"PRICES_JSON": "{"}, "PRICES_JSON"),
        ({"DEFAULT_KEY_TPM": "-5"}, "DEFAULT_KEY_TPM"),
        ({"MANTLE_REGION": "moon-1"}, "MANTLE_REGION"),
        ({"PRICES_JSON": '{"m": {"input": -1}}'}, "PRICES_JSON"),
        ({"PRICES_JSON": '{"m": {"cache_read": 1}}'}, "PRICES_JSON"),
        ({"BUDGET_ALERT_THRESHOLDS": "50,80,x"}, "BUDGET_ALERT_THRESHOLDS"),
        ({"BUDGET_ALERT_THRESHOLDS": "0,50"}, "BUDGET_ALERT_THRESHOLDS"),
        ({"BUDGET_ALERT_THRESHOLDS": "1001"}, "BUDGET_ALERT_THRESHOLDS"),
        ({"BUDGET_ALERT_EVENTS": "sns"}, "BUDGET_ALERT_EVENTS"),
        ({"AWS_ENDPOINT_URL_EVENTS": "events.local"}, "AWS_ENDPOINT_URL_EVENTS"),
        ({"GATEWAY_STAGE": "prod stage"}, "GATEWAY_STAGE"),
        ({"RESERVATION_EXPIRY_SECONDS": "5"}, "RESERVATION_EXPIRY_SECONDS"),
        ({"RESERVATION_EXPIRY_SECONDS": "a day"}, "RESERVATION_EXPIRY_SECONDS"),
    ],
)
def test_bad_value_names_the_variable_in_one_line(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert message.startswith(variable + ":")
    assert "\n" not in message


def test_route_rules_override_comes_before_defaults() -> None:
    settings = Settings.from_env({"MANTLE_ROUTE_RULES": "acme.*=/openai/v1"})
    assert settings.route_rules[0] == ("acme.*", "/openai/v1")
    assert settings.route_rules[1:] == DEFAULT_ROUTE_RULES


def test_bedrock_api_key_is_not_in_repr() -> None:
    settings = Settings.from_env({"BEDROCK_API_KEY": "bedrock-api-key-secret"})
    assert "bedrock-api-key-secret" not in repr(settings)


def test_mantle_region_sets_endpoint_and_default_limits() -> None:
    settings = Settings.from_env(
        {"AWS_REGION": "eu-west-3", "MANTLE_REGION": "eu-west-1", "DEFAULT_KEY_RPM": "60"}
    )
    assert settings.mantle_region == "eu-west-1"
    assert settings.mantle_endpoint_url == "https://bedrock-mantle.eu-west-1.api.aws"
    assert settings.default_key_rpm == 60
    assert settings.default_key_tpm is None


def test_budget_alerts_default_to_50_80_100_in_the_log() -> None:
    settings = Settings.from_env({})
    assert settings.budget_alert_thresholds == (50, 80, 100)
    assert (settings.budget_alert_events, settings.stage) == ("log", "local")
    assert settings.events_endpoint_url is None


def test_budget_alert_settings_as_the_deployed_function_has_them() -> None:
    settings = Settings.from_env(
        {
            "BUDGET_ALERT_THRESHOLDS": " 90,25 ,90",
            "BUDGET_ALERT_EVENTS": "eventbridge",
            "AWS_ENDPOINT_URL_EVENTS": "http://127.0.0.1:4566/",
            "GATEWAY_STAGE": "prod",
        }
    )
    assert settings.budget_alert_thresholds == (25, 90)
    assert settings.budget_alert_events == "eventbridge"
    assert settings.events_endpoint_url == "http://127.0.0.1:4566"
    assert settings.stage == "prod"
    assert Settings.from_env({"BUDGET_ALERT_THRESHOLDS": "none"}).budget_alert_thresholds == ()


def test_reservation_expiry_defaults_to_a_lambda_timeout() -> None:
    assert Settings.from_env({}).reservation_expiry_seconds == 900
    custom = Settings.from_env({"RESERVATION_EXPIRY_SECONDS": "120"})
    assert custom.reservation_expiry_seconds == 120
