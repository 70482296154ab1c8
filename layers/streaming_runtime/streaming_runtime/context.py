"""The context object a handler receives, built from the `/next` headers and the environment.

Attribute names follow the managed runtime's context
(https://docs.aws.amazon.com/lambda/latest/dg/python-context-object.html), so code written for it
works unchanged; Powertools' `Logger.inject_lambda_context` reads `function_name`,
`memory_limit_in_mb`, `invoked_function_arn` and `aws_request_id`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CognitoIdentity:
    cognito_identity_id: str | None = None
    cognito_identity_pool_id: str | None = None


@dataclass(frozen=True, slots=True)
class ClientContext:
    client: Mapping[str, object] | None = None
    custom: Mapping[str, object] | None = None
    env: Mapping[str, object] | None = None


@dataclass(frozen=True, slots=True)
class Invocation:
    """One event from `GET /2018-06-01/runtime/invocation/next`, headers already read.

    https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html#runtimes-api-next
    """

    request_id: str
    deadline_ms: int
    invoked_function_arn: str
    event: bytes
    trace_id: str | None = None
    client_context: str | None = None
    cognito_identity: str | None = None
    tenant_id: str | None = None


@dataclass(slots=True)
class LambdaContext:
    aws_request_id: str
    invoked_function_arn: str
    function_name: str
    function_version: str
    memory_limit_in_mb: int
    log_group_name: str
    log_stream_name: str
    deadline_ms: int
    identity: CognitoIdentity = field(default_factory=CognitoIdentity)
    client_context: ClientContext | None = None
    tenant_id: str | None = None
    clock: Callable[[], float] = time.time

    @classmethod
    def build(cls, invocation: Invocation, env: Mapping[str, str]) -> LambdaContext:
        """Per-invocation values from the headers, per-function values from the environment.

        https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
        """
        return cls(
            aws_request_id=invocation.request_id,
            invoked_function_arn=invocation.invoked_function_arn,
            function_name=env.get("AWS_LAMBDA_FUNCTION_NAME", ""),
            function_version=env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            memory_limit_in_mb=_int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), 128),
            log_group_name=env.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
            log_stream_name=env.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
            deadline_ms=invocation.deadline_ms,
            identity=_identity(invocation.cognito_identity),
            client_context=_client_context(invocation.client_context),
            tenant_id=invocation.tenant_id,
        )

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until `Lambda-Runtime-Deadline-Ms` (epoch ms), never below zero."""
        return max(self.deadline_ms - int(self.clock() * 1000), 0)


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def _json_object(raw: str | None) -> Mapping[str, object]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _identity(raw: str | None) -> CognitoIdentity:
    data = _json_object(raw)
    identity_id = data.get("cognitoIdentityId")
    pool_id = data.get("cognitoIdentityPoolId")
    return CognitoIdentity(
        identity_id if isinstance(identity_id, str) else None,
        pool_id if isinstance(pool_id, str) else None,
    )


def _client_context(raw: str | None) -> ClientContext | None:
    data = _json_object(raw)
    if not data:
        return None

    def part(name: str) -> Mapping[str, object] | None:
        value = data.get(name)
        return value if isinstance(value, dict) else None

    return ClientContext(part("client"), part("custom"), part("env"))
