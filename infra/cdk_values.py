"""StageConfig's plain values as CDK types (stages.py stays free of aws_cdk)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs

from infra.stages import StageConfig

R = logs.RetentionDays
_RETENTION: dict[int, logs.RetentionDays] = {
    1: R.ONE_DAY, 3: R.THREE_DAYS, 5: R.FIVE_DAYS, 7: R.ONE_WEEK, 14: R.TWO_WEEKS,
    30: R.ONE_MONTH, 60: R.TWO_MONTHS, 90: R.THREE_MONTHS, 120: R.FOUR_MONTHS,
    150: R.FIVE_MONTHS, 180: R.SIX_MONTHS, 365: R.ONE_YEAR, 400: R.THIRTEEN_MONTHS,
    545: R.EIGHTEEN_MONTHS, 731: R.TWO_YEARS, 1096: R.THREE_YEARS, 1827: R.FIVE_YEARS,
    2192: R.SIX_YEARS, 2557: R.SEVEN_YEARS, 2922: R.EIGHT_YEARS, 3288: R.NINE_YEARS,
    3653: R.TEN_YEARS,
}  # fmt: skip


def removal_policy(config: StageConfig) -> RemovalPolicy:
    return RemovalPolicy.RETAIN if config.removal_policy == "retain" else RemovalPolicy.DESTROY


def log_retention(config: StageConfig) -> logs.RetentionDays:
    return _RETENTION[config.log_retention_days]
