"""The one Logger and the metrics facade, plus redaction of anything that looks like a secret.

Logs are JSON lines (Powertools Logger). A filter masks gateway keys, bearer values and AWS
secrets in every message and extra field before it is written, so a secret that reaches a log
call by mistake still never reaches CloudWatch.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aws_lambda_powertools import Logger

SERVICE = "mantle-gateway"
_SECRET = re.compile(
    r"(mgw_[A-Za-z0-9_-]{8,}|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}|bedrock-api-key-[A-Za-z0-9+/=]+)"
)


def redact(text: str) -> str:
    return _SECRET.sub("[REDACTED]", text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.args:
            record.args = (
                tuple(_scrub(a) for a in record.args)
                if isinstance(record.args, tuple)
                else record.args
            )
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD and isinstance(value, str | dict | list):
                setattr(record, name, _scrub(value))
        return True


_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}

logger = Logger(service=SERVICE)
logger.addFilter(_RedactFilter())
for _handler in logger.handlers:
    _handler.addFilter(_RedactFilter())


_metrics = {"namespace": "MantleGateway", "enabled": True}


def configure(*, level: str, metrics_namespace: str, metrics_enabled: bool = True) -> None:
    logger.setLevel(level)
    _metrics["namespace"] = metrics_namespace
    _metrics["enabled"] = metrics_enabled


def metric(name: str, value: float = 1.0) -> None:
    """One CloudWatch metric (EMF line) for a rare event: refusals, write failures, unknown prices.

    Imported on first use: most requests never emit one, so the cold start does not pay for it.
    """
    if not _metrics["enabled"]:
        return
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=value,
        namespace=str(_metrics["namespace"]),
        default_dimensions={"service": SERVICE},  # what the stack's alarms select on
    ):
        pass
