"""StageConfig: the typed per-stage values of cdk.json, parsed once; a bad value fails in one line.

cdk.json holds `context.stages`, one object per stage (`dev`, `prod`, more by adding entries):

    "stages": {"dev": {"enableOpenaiPassthrough": true, "enableAnthropicPassthrough": true,
                       "logRetentionDays": 7, ...}}

`parse_stages` turns that mapping into frozen `StageConfig` objects and raises `StageConfigError`
whose message is one line naming the stage and the field (`stage 'dev': logRetentionDays: ...`).
This module imports nothing from aws_cdk, so it is cheap to import and to test; the stacks turn
these plain values into CDK types.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

T = TypeVar("T")

RemovalPolicyName = Literal["retain", "destroy"]

# The retention periods CloudWatch Logs accepts that aws_logs.RetentionDays can express.
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
    1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_ACCOUNT = re.compile(r"^\d{12}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://[^/\s]+\S*$")
_PROJECT = re.compile(r"^(proj_[A-Za-z0-9]+|default)$")

# Lambda hard limits: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
MEMORY_MB_RANGE = (128, 10240)
TIMEOUT_SECONDS_RANGE = (1, 900)


class StageConfigError(ValueError):
    """A stage in cdk.json has a missing, unknown or invalid field. The message is one line."""


@dataclass(frozen=True, slots=True)
class StageConfig:
    """Everything that differs between stages. Field names mirror the cdk.json keys."""

    name: str
    enable_openai_passthrough: bool
    log_retention_days: int
    removal_policy: RemovalPolicyName
    pitr: bool
    deletion_protection: bool
    alarms: bool
    alarm_email: str | None
    default_rpm: int
    default_tpm: int
    lambda_memory_mb: int = 1024
    lambda_timeout_seconds: int = 300
    log_level: str = "INFO"
    account: str | None = None
    region: str | None = None
    mantle_region: str | None = None
    mantle_endpoint_url: str | None = None
    api_throttle_rate_limit: int = 50
    api_throttle_burst_limit: int = 100
    cors_allowed_origins: tuple[str, ...] = ("*",)
    enable_anthropic_passthrough: bool = True
    """`/anthropic/v1/...` (Claude Code, Anthropic SDKs); off answers 404 there."""
    mantle_projects: tuple[str, ...] = ()
    """The Mantle projects the function may use (IAM names their ARNs); empty: any of them."""
    budget_alert_thresholds: tuple[int, ...] = (50, 80, 100)
    """Percent of a key's monthly budget at which one alert is sent (keys may set their own)."""


class _Fields:
    """Reads one stage's raw mapping; every problem becomes a one-line StageConfigError."""

    def __init__(self, stage: str, raw: Mapping[str, Any], prefix: str = "") -> None:
        self.stage = stage
        self.raw = raw
        self.prefix = prefix
        self.seen: set[str] = set()

    def fail(self, field: str, problem: str) -> StageConfigError:
        return StageConfigError(f"stage {self.stage!r}: {self.prefix}{field}: {problem}")

    def _get(self, field: str, default: T | None, required: bool) -> Any:
        self.seen.add(field)
        if field not in self.raw or self.raw[field] is None:
            if required:
                raise self.fail(field, "is required")
            return default
        return self.raw[field]

    def flag(self, field: str, default: bool | None = None) -> bool:
        value = self._get(field, default, default is None)
        if not isinstance(value, bool):
            raise self.fail(field, f"{value!r} is not true or false")
        return value

    def integer(self, field: str, low: int, high: int, default: int | None = None) -> int:
        value = self._get(field, default, default is None)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"{value!r} is not a whole number")
        if not low <= value <= high:
            raise self.fail(field, f"{value} is outside {low}..{high}")
        return value

    def choice(self, field: str, options: tuple[T, ...], default: T | None = None) -> T:
        value = self._get(field, default, default is None)
        if value not in options:
            allowed = ", ".join(str(o) for o in options)
            raise self.fail(field, f"{value!r} is not one of {allowed}")
        result: T = value
        return result

    def text(
        self, field: str, pattern: re.Pattern[str], what: str, *, required: bool = False
    ) -> str | None:
        value = self._get(field, None, required)
        if value is None:
            return None
        if not isinstance(value, str) or not pattern.match(value):
            raise self.fail(field, f"{value!r} is not {what}")
        return value

    def strings(
        self, field: str, check: Callable[[str], bool], what: str, default: tuple[str, ...]
    ) -> tuple[str, ...]:
        value = self._get(field, default, False)
        if isinstance(value, tuple):
            return value
        if not isinstance(value, list) or not value:
            raise self.fail(field, f"{value!r} is not a non-empty list of {what}")
        for item in value:
            if not isinstance(item, str) or not check(item):
                raise self.fail(field, f"{item!r} is not {what}")
        return tuple(value)

    def percents(self, field: str, default: tuple[int, ...]) -> tuple[int, ...]:
        """A list of whole percents 1..1000, sorted and without repeats; [] is allowed (none)."""
        value = self._get(field, default, False)
        if isinstance(value, tuple):
            return value
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1000 for v in value
        ):
            raise self.fail(field, f"{value!r} is not a list of whole percents 1..1000")
        return tuple(sorted(set(value)))

    def limits(self, field: str) -> tuple[int, int]:
        value = self._get(field, None, True)
        if not isinstance(value, Mapping) or set(value) != {"rpm", "tpm"}:
            raise self.fail(field, f"{value!r} is not an object with exactly rpm and tpm")
        inner = _Fields(self.stage, value, prefix=f"{field}.")
        return inner.integer("rpm", 1, 1_000_000), inner.integer("tpm", 1, 1_000_000_000)

    def reject_unknown(self) -> None:
        unknown = sorted(set(self.raw) - self.seen)
        if unknown:
            raise self.fail(unknown[0], "is not a known stage field")


def parse_stage(name: str, raw: object) -> StageConfig:
    """One stage's cdk.json object → StageConfig, or StageConfigError naming stage and field."""
    if not _STAGE_NAME.match(name):
        raise StageConfigError(
            f"stage {name!r}: name: must be lower-case letters, digits or '-', at most 16"
        )
    if not isinstance(raw, Mapping):
        raise StageConfigError(f"stage {name!r}: must be an object of fields, not {raw!r}")
    f = _Fields(name, raw)
    rpm, tpm = f.limits("defaultKeyLimits")
    removal: RemovalPolicyName = f.choice("removalPolicy", ("retain", "destroy"))
    config = StageConfig(
        name=name,
        enable_openai_passthrough=f.flag("enableOpenaiPassthrough"),
        enable_anthropic_passthrough=f.flag("enableAnthropicPassthrough", True),
        log_retention_days=f.choice("logRetentionDays", LOG_RETENTION_DAYS),
        removal_policy=removal,
        pitr=f.flag("pitr"),
        deletion_protection=f.flag("deletionProtection", False),
        alarms=f.flag("alarms"),
        alarm_email=f.text("alarmEmail", _EMAIL, "an e-mail address"),
        default_rpm=rpm,
        default_tpm=tpm,
        lambda_memory_mb=f.integer("lambdaMemoryMb", *MEMORY_MB_RANGE, default=1024),
        lambda_timeout_seconds=f.integer(
            "lambdaTimeoutSeconds", *TIMEOUT_SECONDS_RANGE, default=300
        ),
        log_level=f.choice("logLevel", LOG_LEVELS, "INFO"),
        account=f.text("account", _ACCOUNT, "a 12-digit AWS account id"),
        region=f.text("region", _REGION, "a region name like us-east-1"),
        mantle_region=f.text("mantleRegion", _REGION, "a region name like us-east-1"),
        mantle_endpoint_url=f.text("mantleEndpointUrl", _URL, "an http(s) URL"),
        api_throttle_rate_limit=f.integer("apiThrottleRateLimit", 1, 10_000, default=50),
        api_throttle_burst_limit=f.integer("apiThrottleBurstLimit", 1, 5_000, default=100),
        cors_allowed_origins=f.strings(
            "corsAllowedOrigins",
            lambda o: o == "*" or bool(_URL.match(o)),
            "'*' or an http(s) origin",
            ("*",),
        ),
        budget_alert_thresholds=f.percents("budgetAlertThresholds", (50, 80, 100)),
        mantle_projects=f.strings(
            "mantleProjects",
            lambda p: bool(_PROJECT.match(p)),
            "a Mantle project id (proj_… or default)",
            (),
        ),
    )
    f.reject_unknown()
    if config.alarm_email and not config.alarms:
        raise f.fail("alarmEmail", "is set but alarms is false")
    return config


def parse_stages(raw: object) -> dict[str, StageConfig]:
    """The `stages` context value → {name: StageConfig}, in the order cdk.json lists them."""
    if not isinstance(raw, Mapping) or not raw:
        raise StageConfigError(
            "context 'stages' is missing or empty: cdk.json must define at least one stage"
        )
    return {str(name): parse_stage(str(name), value) for name, value in raw.items()}


def select_stages(stages: Mapping[str, StageConfig], selected: str | None) -> list[StageConfig]:
    """All stages when `selected` is empty, else the one named (an unknown name fails)."""
    if not selected:
        return list(stages.values())
    if selected not in stages:
        known = ", ".join(stages)
        raise StageConfigError(f"stage {selected!r}: not defined in cdk.json (known: {known})")
    return [stages[selected]]
