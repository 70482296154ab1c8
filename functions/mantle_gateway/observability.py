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


def set_level(level: str) -> None:
    logger.setLevel(level)
