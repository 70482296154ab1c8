"""Reports what the handler sees: the context, the trace header, the remaining time, and state
that only survives if the process (and this module, imported once) is reused."""

from __future__ import annotations

import os
import time
from typing import Any

from aws_lambda_powertools import Logger

IMPORTS = 1
INVOCATIONS = 0
logger = Logger(service="probe")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global INVOCATIONS
    INVOCATIONS += 1
    remaining = context.get_remaining_time_in_millis()
    keys = logger.get_current_keys()
    return {
        "pid": os.getpid(),
        "imports": IMPORTS,
        "invocations": INVOCATIONS,
        "now_ms": int(time.time() * 1000),
        "remaining_ms": remaining,
        "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
        "aws_request_id": context.aws_request_id,
        "invoked_function_arn": context.invoked_function_arn,
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "powertools": {k: keys.get(k) for k in ("function_name", "function_request_id")},
    }
