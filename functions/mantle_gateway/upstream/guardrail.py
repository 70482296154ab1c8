"""Bedrock's standalone ApplyGuardrail API, called by the gateway itself (docs/decisions/0011).

Mantle ignores the `X-Amzn-Bedrock-Guardrail*` headers, so the gateway evaluates text with
`POST /guardrail/{guardrailIdentifier}/version/{guardrailVersion}/apply` on `bedrock-runtime`
(SigV4 service `bedrock`), body `{"source": "INPUT"|"OUTPUT", "content": [{"text": {"text":
…}}]}`. The answer (Bedrock API reference, `API_runtime_ApplyGuardrail`) carries `action`
(`NONE` | `GUARDRAIL_INTERVENED`), `outputs` (`[{"text": …}]`: the blocked message, or the
texts with sensitive information masked), `assessments` (per policy, each finding with its own
`action`: `BLOCKED`, `ANONYMIZED`, …) and `usage` (text units per policy).

An intervention that blocked anything is a block; one that only anonymized is a mask, whose
`outputs` replace the texts one for one. Any failure (unreachable, throttled, 5xx, an answer
that cannot be read) is one typed `GuardrailUnavailable`: what to do then is the caller's
failure mode, not this client's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from mantle_gateway import schema
from mantle_gateway.errors import UpstreamError

if TYPE_CHECKING:
    from mantle_gateway.upstream.client import UpstreamClient
    from mantle_gateway.upstream.signing import Signer

SERVICE = "bedrock"
Source = Literal["INPUT", "OUTPUT"]
_REF = re.compile(schema.GUARDRAIL_PATTERN)
_BILLED_UNITS = (
    "topicPolicyUnits",
    "contentPolicyUnits",
    "sensitiveInformationPolicyUnits",
    "contextualGroundingPolicyUnits",
    "automatedReasoningPolicyUnits",
)
"""Usage fields that are charged; word filters and `sensitiveInformationPolicyFreeUnits`
(regex) are free."""


@dataclass(frozen=True, slots=True)
class GuardrailRef:
    identifier: str
    version: str

    @classmethod
    def parse(cls, raw: str) -> GuardrailRef | None:
        """`ID:VERSION` (the id may be an ARN, itself full of colons); None when malformed."""
        found = _REF.fullmatch(raw.strip())
        return cls(found["id"], found["version"]) if found else None

    def __str__(self) -> str:
        return f"{self.identifier}:{self.version}"


@dataclass(frozen=True, slots=True)
class Verdict:
    intervened: bool
    blocked: bool
    """Intervened and something was BLOCKED (not only anonymized)."""
    outputs: tuple[str, ...]
    """What the guardrail says to show instead: the blocked message, or the masked texts."""
    units: int
    """Charged text units, summed over the policies."""

    @property
    def action(self) -> str:
        return "intervened" if self.intervened else "none"


class GuardrailUnavailable(Exception):
    """ApplyGuardrail could not give a verdict; `reason` is a short word for logs and metrics."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GuardrailClient:
    """Signs with its own `bedrock` signer and sends over the Mantle client's pooled transport
    (the URL is absolute, so one pool serves both hosts)."""

    def __init__(self, base_url: str, *, signer: Signer, upstream: UpstreamClient) -> None:
        self._base_url = base_url.rstrip("/")
        self._signer = signer
        self._upstream = upstream

    def apply(
        self, ref: GuardrailRef, source: Source, texts: list[str], deadline: float | None
    ) -> Verdict:
        url = (
            f"{self._base_url}/guardrail/{quote(ref.identifier, safe='')}"
            f"/version/{quote(ref.version, safe='')}/apply"
        )
        payload = json.dumps(
            {"source": source, "content": [{"text": {"text": text}} for text in texts]},
            separators=(",", ":"),
        ).encode()
        headers = self._signer.sign("POST", url, {"content-type": "application/json"}, payload)
        try:
            response = self._upstream.open("POST", url, headers, payload, deadline)
            content = self._upstream.read_all(response)
        except UpstreamError as exc:  # UpstreamTimeoutError is one too
            raise GuardrailUnavailable("unreachable") from exc
        if response.status_code == 429:
            raise GuardrailUnavailable("throttled")
        if response.status_code != 200:
            raise GuardrailUnavailable(f"status_{response.status_code}")
        return read_verdict(content, len(texts))


def read_verdict(content: bytes, sent: int) -> Verdict:
    try:
        answer = json.loads(content)
    except ValueError:
        raise GuardrailUnavailable("unreadable") from None
    if not isinstance(answer, dict) or answer.get("action") not in ("NONE", "GUARDRAIL_INTERVENED"):
        raise GuardrailUnavailable("unreadable")
    outputs = tuple(
        item["text"]
        for item in answer.get("outputs") or []
        if isinstance(item, dict) and isinstance(item.get("text"), str)
    )
    intervened = answer["action"] == "GUARDRAIL_INTERVENED"
    blocked = intervened and _any_blocked(answer.get("assessments"))
    if intervened and not blocked and len(outputs) != sent:
        # A mask whose texts cannot be put back one for one cannot be applied faithfully.
        raise GuardrailUnavailable("unmatched_outputs")
    if blocked and not outputs:
        outputs = ("The guardrail blocked this content.",)
    return Verdict(intervened, blocked, outputs, _units(answer.get("usage")))


def _any_blocked(value: Any) -> bool:
    """True when any finding anywhere in the assessments says BLOCKED."""
    if isinstance(value, dict):
        if value.get("action") == "BLOCKED":
            return True
        return any(_any_blocked(v) for v in value.values())
    if isinstance(value, list):
        return any(_any_blocked(v) for v in value)
    return False


def _units(usage: Any) -> int:
    if not isinstance(usage, dict):
        return 0
    total = 0
    for name in _BILLED_UNITS:
        value = usage.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            total += value
    return total
