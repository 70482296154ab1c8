"""The one Logger and the metrics facade, plus redaction of anything that looks like a secret.

Logs are JSON lines (Powertools Logger). A filter masks gateway keys, bearer values and AWS
secrets in every message and extra field before it is written, so a secret that reaches a log
call by mistake still never reaches CloudWatch. Every refusal the gateway gives is one
`request_refused` line (`log_refusal`), so operators see them without reading access logs.
"""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools import Logger

from mantle_gateway.secret_text import redact

SERVICE = "mantle-gateway"


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


def log_refusal(status: int, code: str | None, **context: str | None) -> None:
    """One `request_refused` line: 4xx at INFO (a client's mistake, or a limit doing its job),
    5xx at WARNING. `context` names the request (`request_id`, `key_id` once the key is known,
    `door`); never the key itself or its digest. Absent values are left out."""
    fields: dict[str, object] = {"status": status, "code": code}
    fields.update((name, value) for name, value in context.items() if value is not None)
    (logger.warning if status >= 500 else logger.info)("request_refused", extra=fields)


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
