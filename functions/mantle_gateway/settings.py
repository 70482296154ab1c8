"""Settings: parsed once from the environment into one frozen, typed object.

No other module reads `os.environ`; tests pass a plain dict. A bad value fails at start with one
line naming the variable (`ConfigError`), never later in the middle of a request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from mantle_gateway import schema
from mantle_gateway.errors import ConfigError

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_PRICE_FIELDS = frozenset({"input", "output", "cached", "cache_write"})

DEFAULT_ALERT_THRESHOLDS = (50, 80, 100)
MAX_ALERT_THRESHOLD = 1000
_STAGE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

DEFAULT_ROUTE_RULES: tuple[tuple[str, str], ...] = (
    # reference/mantle-facts.md §1.2: the OpenAI frontier family, Gemma 4 and Grok live under
    # /openai/v1; everything else (gpt-oss, Qwen, DeepSeek, Mistral, …) under /v1.
    ("openai.gpt-5*", "/openai/v1"),
    ("openai.gpt-6*", "/openai/v1"),
    ("google.gemma-4*", "/openai/v1"),
    ("xai.grok*", "/openai/v1"),
    ("*", "/v1"),
)


@dataclass(frozen=True, slots=True)
class Settings:
    region: str = "us-east-1"
    mantle_region: str = "us-east-1"
    """Region of Mantle and of the SigV4 scope (MANTLE_REGION, else AWS_REGION)."""
    mantle_endpoint_url: str = "https://bedrock-mantle.us-east-1.api.aws"
    dynamodb_endpoint_url: str | None = None
    keys_table: str = schema.DEFAULT_KEYS_TABLE
    usage_table: str = schema.DEFAULT_USAGE_TABLE
    limits_table: str = schema.DEFAULT_LIMITS_TABLE
    enable_openai_passthrough: bool = True
    enable_anthropic_passthrough: bool = True
    """Serve the Anthropic Messages surface under `/anthropic/v1` (ENABLE_ANTHROPIC_PASSTHROUGH)."""
    log_level: str = "INFO"
    key_cache_ttl_seconds: float = 30.0
    upstream_connect_timeout_seconds: float = 5.0
    upstream_read_timeout_seconds: float = 300.0
    max_request_bytes: int = 6_291_456
    route_rules: tuple[tuple[str, str], ...] = DEFAULT_ROUTE_RULES
    price_overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    default_key_rpm: int | None = None
    default_key_tpm: int | None = None
    """The stage's limits for keys that have none of their own (DEFAULT_KEY_RPM / _TPM)."""
    budget_default_output_tokens: int = 4096
    """Output tokens assumed when reserving budget for a request that sets no max tokens."""
    reservation_expiry_seconds: float = 900.0
    """How long a budget reservation lasts without a deadline from the door (the local door) or
    for a background response: after it, a reservation no request settled is released
    (RESERVATION_EXPIRY_SECONDS; docs/decisions/0006)."""
    metrics_namespace: str = "MantleGateway"
    metrics_enabled: bool = True
    bedrock_api_key: str | None = field(default=None, repr=False)
    """Bearer mode: sent upstream instead of a SigV4 signature when set (never logged)."""
    budget_alert_thresholds: tuple[int, ...] = DEFAULT_ALERT_THRESHOLDS
    """Percent of a key's monthly budget at which one event is emitted, for keys that set none
    of their own (BUDGET_ALERT_THRESHOLDS="50,80,100"; "none": no alerts)."""
    budget_alert_events: str = "log"
    """Where a budget alert goes: `log` (one JSON line, as `serve` does) or `eventbridge` (the
    default bus, as the deployed function does; BUDGET_ALERT_EVENTS)."""
    events_endpoint_url: str | None = None
    """EventBridge endpoint override (AWS_ENDPOINT_URL_EVENTS, botocore's convention)."""
    stage: str = "local"
    """The deployment's stage name, named in budget alerts (GATEWAY_STAGE)."""

    @classmethod
    def load(cls) -> Settings:
        """The process environment: the one place it is read."""
        import os

        return cls.from_env(os.environ)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        if not _REGION.match(region):
            raise ConfigError(f"AWS_REGION: {region!r} is not a region name like us-east-1")
        mantle_region = env.get("MANTLE_REGION") or region
        if not _REGION.match(mantle_region):
            raise ConfigError(
                f"MANTLE_REGION: {mantle_region!r} is not a region name like us-east-1"
            )
        endpoint = (
            env.get("MANTLE_ENDPOINT_URL") or f"https://bedrock-mantle.{mantle_region}.api.aws"
        )
        if not re.match(r"^https?://[^/\s]+", endpoint):
            raise ConfigError(f"MANTLE_ENDPOINT_URL: {endpoint!r} is not an http(s) URL")
        ttl = _number(env, "KEY_CACHE_TTL_SECONDS", 30.0, low=0.0, high=60.0)
        return cls(
            region=region,
            mantle_region=mantle_region,
            mantle_endpoint_url=endpoint.rstrip("/"),
            dynamodb_endpoint_url=env.get("AWS_ENDPOINT_URL_DYNAMODB") or None,
            keys_table=_name(env, "KEYS_TABLE", schema.DEFAULT_KEYS_TABLE),
            usage_table=_name(env, "USAGE_TABLE", schema.DEFAULT_USAGE_TABLE),
            limits_table=_name(env, "LIMITS_TABLE", schema.DEFAULT_LIMITS_TABLE),
            enable_openai_passthrough=_flag(env, "ENABLE_OPENAI_PASSTHROUGH", True),
            enable_anthropic_passthrough=_flag(env, "ENABLE_ANTHROPIC_PASSTHROUGH", True),
            log_level=_log_level(env),
            key_cache_ttl_seconds=ttl,
            upstream_connect_timeout_seconds=_number(
                env, "UPSTREAM_CONNECT_TIMEOUT_SECONDS", 5.0, low=0.1, high=60.0
            ),
            upstream_read_timeout_seconds=_number(
                env, "UPSTREAM_READ_TIMEOUT_SECONDS", 300.0, low=0.1, high=900.0
            ),
            max_request_bytes=int(
                _number(env, "MAX_REQUEST_BYTES", 6_291_456, low=1024, high=6_291_456)
            ),
            route_rules=_route_rules(env),
            price_overrides=_prices(env),
            default_key_rpm=_optional_int(env, "DEFAULT_KEY_RPM"),
            default_key_tpm=_optional_int(env, "DEFAULT_KEY_TPM"),
            budget_default_output_tokens=int(
                _number(env, "BUDGET_DEFAULT_OUTPUT_TOKENS", 4096, low=1, high=1_000_000)
            ),
            reservation_expiry_seconds=_number(
                env, "RESERVATION_EXPIRY_SECONDS", 900.0, low=60.0, high=86_400.0
            ),
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or "MantleGateway",
            metrics_enabled=not _flag(env, "POWERTOOLS_METRICS_DISABLED", False),
            bedrock_api_key=env.get("BEDROCK_API_KEY") or None,
            budget_alert_thresholds=_thresholds(env),
            budget_alert_events=_choice(env, "BUDGET_ALERT_EVENTS", ("log", "eventbridge")),
            events_endpoint_url=_url(env, "AWS_ENDPOINT_URL_EVENTS"),
            stage=_stage(env),
        )


def _name(env: Mapping[str, str], var: str, default: str) -> str:
    value = env.get(var) or default
    if not re.match(r"^[A-Za-z0-9_.-]{3,255}$", value):
        raise ConfigError(f"{var}: {value!r} is not a valid DynamoDB table name")
    return value


def _flag(env: Mapping[str, str], var: str, default: bool) -> bool:
    raw = env.get(var)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{var}: {raw!r} is not true or false")


def _number(env: Mapping[str, str], var: str, default: float, *, low: float, high: float) -> float:
    raw = env.get(var)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{var}: {raw!r} is not a number") from None
    if not low <= value <= high:
        raise ConfigError(f"{var}: {raw} is outside {low:g}..{high:g}")
    return value


def _optional_int(env: Mapping[str, str], var: str) -> int | None:
    raw = env.get(var, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigError(f"{var}: {raw!r} is not a positive whole number")
    return int(raw)


def parse_thresholds(raw: str) -> tuple[int, ...]:
    """ "50,80,100" → (50, 80, 100), sorted and without repeats; "none" → () (no alerts).
    Raises ValueError with a one-line reason."""
    if raw.strip().lower() == "none":
        return ()
    values: set[int] = set()
    for part in raw.split(","):
        text = part.strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_ALERT_THRESHOLD:
            raise ValueError(
                f"{text!r} is not a whole percent 1..{MAX_ALERT_THRESHOLD} "
                "(give e.g. 50,80,100 or none)"
            )
        values.add(int(text))
    return tuple(sorted(values))


def _thresholds(env: Mapping[str, str]) -> tuple[int, ...]:
    raw = env.get("BUDGET_ALERT_THRESHOLDS", "").strip()
    if not raw:
        return DEFAULT_ALERT_THRESHOLDS
    try:
        return parse_thresholds(raw)
    except ValueError as exc:
        raise ConfigError(f"BUDGET_ALERT_THRESHOLDS: {exc}") from None


def _choice(env: Mapping[str, str], var: str, options: tuple[str, ...]) -> str:
    """One of `options` (the first is the default)."""
    value = (env.get(var) or options[0]).strip().lower()
    if value not in options:
        raise ConfigError(f"{var}: {value!r} is not {' or '.join(options)}")
    return value


def _url(env: Mapping[str, str], var: str) -> str | None:
    value = env.get(var) or None
    if value is not None and not re.match(r"^https?://[^/\s]+", value):
        raise ConfigError(f"{var}: {value!r} is not an http(s) URL")
    return value.rstrip("/") if value else None


def _stage(env: Mapping[str, str]) -> str:
    value = env.get("GATEWAY_STAGE") or "local"
    if not _STAGE.match(value):
        raise ConfigError(f"GATEWAY_STAGE: {value!r} is not a stage name (letters, digits, - _)")
    return value


def _log_level(env: Mapping[str, str]) -> str:
    level = (env.get("LOG_LEVEL") or "INFO").upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"LOG_LEVEL: {level!r} is not DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def _route_rules(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """MANTLE_ROUTE_RULES="glob=/prefix,…": tried before the defaults; first match wins."""
    raw = env.get("MANTLE_ROUTE_RULES", "").strip()
    if not raw:
        return DEFAULT_ROUTE_RULES
    rules: list[tuple[str, str]] = []
    for item in raw.split(","):
        pattern, sep, prefix = item.strip().partition("=")
        if not sep or not pattern or prefix not in ("/v1", "/openai/v1"):
            raise ConfigError(
                f"MANTLE_ROUTE_RULES: {item.strip()!r} is not GLOB=/v1 or GLOB=/openai/v1"
            )
        rules.append((pattern, prefix))
    return tuple(rules) + DEFAULT_ROUTE_RULES


def _prices(env: Mapping[str, str]) -> Mapping[str, Mapping[str, float]]:
    """PRICES_JSON='{"model": {"input": 3, "output": 15, "cached": 0.3, "cache_write": 3.75}}'
    (USD per 1M tokens; any subset of the four)."""
    raw = env.get("PRICES_JSON", "").strip()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ConfigError("PRICES_JSON: not valid JSON") from None
    if not isinstance(data, dict):
        raise ConfigError("PRICES_JSON: must be an object of model -> prices")
    out: dict[str, dict[str, float]] = {}
    for model, prices in data.items():
        if not isinstance(prices, dict) or not prices.keys() <= _PRICE_FIELDS:
            raise ConfigError(
                f"PRICES_JSON: {model!r} must map input/output/cached/cache_write to numbers"
            )
        try:
            out[model] = {k: float(v) for k, v in prices.items()}
        except (TypeError, ValueError):
            raise ConfigError(f"PRICES_JSON: {model!r} has a price that is not a number") from None
        if any(v < 0 for v in out[model].values()):
            raise ConfigError(f"PRICES_JSON: {model!r} has a negative price")
    return out
