"""The stores' DynamoDB access, created on first use, and the translation of its errors.

The stores' calls go through `store.wire` (DynamoDB's JSON protocol, signed by our SigV4 signer);
botocore's client (`Dynamo.client`) is kept for the administrative calls that need its waiters
and models (tables, the CLI). Errors are translated only here (STYLE habit 3): a store caller
sees `StoreError` (DynamoDB unreachable or refusing: the core fails closed with 503) or
`ConditionFailed`. Items are plain dicts of Python values; numbers come back as `Decimal`, as
DynamoDB keeps them.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from mantle_gateway.store.wire import WireClient, WireError, endpoint_for

if TYPE_CHECKING:
    import httpx
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from mantle_gateway.upstream.signing import CredentialSource

T = TypeVar("T")


class StoreError(Exception):
    """DynamoDB could not be reached or refused the call for a reason other than a condition."""


class ConditionFailed(Exception):
    """A conditional write's condition was false (over a limit, already written, …).

    `failed` says which writes failed their condition (one entry for a single write, one per
    action of a transaction), and `items` how each found its item, as plain values, when the
    write asked for it (`ReturnValuesOnConditionCheckFailure=ALL_OLD`), else None."""

    def __init__(
        self,
        code: str,
        failed: tuple[bool, ...] = (True,),
        items: tuple[dict[str, Any] | None, ...] = (None,),
    ) -> None:
        super().__init__(code)
        self.failed = failed
        self.items = items


class _Conflict(Exception):
    """Internal: the call met a transaction in flight on the same item (worth a retry)."""


_CONFLICT_PAUSES = (0.005, 0.02)
"""Seconds before each retry of a conflicted call (jittered); the third conflict is an error."""


class Dynamo:
    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`transport` is a seam for tests: the HTTP transport the stores' calls go through."""
        self._region = region
        self._endpoint_url = endpoint_url
        self._transport = transport
        self._client: DynamoDBClient | None = None
        self._wire: WireClient | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = _make_client(self._region, self._endpoint_url)
        return self._client

    @property
    def wire(self) -> WireClient:
        if self._wire is None:
            with self._lock:
                if self._wire is None:
                    self._wire = WireClient(
                        self._endpoint_url or endpoint_for(self._region),
                        self._region,
                        _credentials(self._endpoint_url),
                        transport=self._transport,
                    )
        return self._wire

    def call(self, operation: Callable[[WireClient], T]) -> T:
        """Run one call; map conditional failures and every other DynamoDB failure.

        A write that meets a ledger transaction in flight on the same item (the key's month item
        is both admitted against and settled) fails with TransactionConflictException, which
        no retry policy covers; it is retried here after a few milliseconds."""
        pauses = iter(_CONFLICT_PAUSES)
        while True:
            try:
                return self._call_once(operation)
            except _Conflict as exc:
                pause = next(pauses, None)
                if pause is None:
                    raise StoreError("TransactionConflictException") from exc.__cause__
                time.sleep(pause * random.uniform(0.5, 1.5))

    def _call_once(self, operation: Callable[[WireClient], T]) -> T:
        try:
            return operation(self.wire)
        except WireError as exc:
            code = exc.code
            if code == "TransactionConflictException":
                raise _Conflict from exc
            if code == "ConditionalCheckFailedException":
                raise ConditionFailed(code, (True,), (_found(exc.answer),)) from exc
            if code == "TransactionCanceledException":
                reasons = exc.answer.get("CancellationReasons", [])
                codes = [r.get("Code", "") for r in reasons]
                if "ConditionalCheckFailed" in codes and all(
                    c in ("ConditionalCheckFailed", "None", "") for c in codes
                ):
                    raise ConditionFailed(
                        ",".join(codes),
                        tuple(c == "ConditionalCheckFailed" for c in codes),
                        tuple(_found(r) for r in reasons),
                    ) from exc
            raise StoreError(code) from exc


def _found(answer: Mapping[str, Any]) -> dict[str, Any] | None:
    """The item a failed condition found (returned only when the write asked for it)."""
    item = answer.get("Item")
    return from_item(item) if isinstance(item, dict) else None


def _credentials(endpoint_url: str | None) -> CredentialSource:
    """The default chain; a local endpoint (moto) takes any credentials, so none are demanded
    for it."""
    from mantle_gateway.upstream.signing import default_credentials, static_credentials

    chain = default_credentials()
    if endpoint_url and chain() is None:
        return static_credentials("local", "local")
    return chain


def _make_client(region: str, endpoint_url: str | None) -> DynamoDBClient:
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    config = Config(
        connect_timeout=2,
        read_timeout=5,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=64,
        # The stores build every request in code (and tests run each shape against DynamoDB's
        # stand-in); re-checking the types on every call cost ~0.1-0.3 ms of CPU per call.
        parameter_validation=False,
    )
    kwargs: dict[str, Any] = {}
    if endpoint_url and session.get_credentials() is None:
        # A local endpoint (moto) takes any credentials; do not demand real ones for it.
        kwargs = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    client: DynamoDBClient = session.create_client(  # type: ignore[assignment]
        "dynamodb", region_name=region, endpoint_url=endpoint_url, config=config, **kwargs
    )
    return client


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """Python values → DynamoDB attribute values; None values are left out (sparse)."""
    return {k: to_attr(v) for k, v in values.items() if v is not None}


def to_attr(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | Decimal):
        return {"N": number(value)}
    if isinstance(value, float):
        return {"N": repr(value)}
    if isinstance(value, list | tuple):
        return {"L": [to_attr(v) for v in value]}
    if isinstance(value, dict):
        return {"M": to_item(value)}
    raise TypeError(f"cannot store {type(value).__name__}")


def number(value: int | Decimal) -> str:
    """A DynamoDB number literal in plain notation ("0E-10" confuses some readers, e.g. moto)."""
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: from_attr(v) for k, v in item.items()}


def from_attr(attr: Mapping[str, Any]) -> Any:
    ((kind, value),) = attr.items()
    if kind == "S":
        return value
    if kind == "N":
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() and "." not in value else number
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "L":
        return [from_attr(v) for v in value]
    if kind == "M":
        return from_item(value)
    if kind == "SS":
        return list(value)
    raise TypeError(f"unsupported attribute type {kind}")
