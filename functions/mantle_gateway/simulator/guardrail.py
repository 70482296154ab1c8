"""A deterministic stand-in for Bedrock's ApplyGuardrail (`bedrock-runtime`, SigV4 service
`bedrock`), served by the same simulator so one process demonstrates the guarded path.

Its policy: a word list blocks (a word filter: the answer's `outputs` is the configured blocked
message for the source), and card-number-like digit runs (13 to 19 digits, spaces or dashes
allowed between them) are anonymized as `{CREDIT_DEBIT_CARD_NUMBER}`, as a sensitive
information filter set to ANONYMIZE does. Answers have the shape of the API reference
(`API_runtime_ApplyGuardrail`): `action`, `outputs` (one per text when masking), `assessments`,
`usage` (text units: 1,000 characters or part of them, per text block).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from .api import Answer

PATH = re.compile(r"^/guardrail/(?P<id>[^/]+)/version/(?P<version>[^/]+)/apply$")
ROUTE_PATH = "/guardrail/apply"
"""The path a fault names to hit the guardrail calls (`ErrorAnswer(path=ROUTE_PATH, …)`)."""
SERVICE = "bedrock"
CARD = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
MASK = "{CREDIT_DEBIT_CARD_NUMBER}"


def apply(
    body: bytes,
    *,
    blocked_words: Sequence[str],
    blocked_input_message: str,
    blocked_output_message: str,
    failing_sources: frozenset[str] = frozenset(),
) -> Answer:
    try:
        request = json.loads(body)
        source = request["source"]
        texts = [block["text"]["text"] for block in request["content"]]
    except (ValueError, KeyError, TypeError):
        return _error(400, "ValidationException", "Malformed ApplyGuardrail request.")
    if source not in ("INPUT", "OUTPUT") or not all(isinstance(t, str) for t in texts):
        return _error(400, "ValidationException", "source must be INPUT or OUTPUT.")
    if source in failing_sources:
        return _error(503, "ServiceUnavailableException", "Simulated unavailability.")
    units = sum(max(1, math.ceil(len(text) / 1000)) for text in texts)
    usage = {
        "topicPolicyUnits": 0,
        "contentPolicyUnits": units,
        "wordPolicyUnits": units,
        "sensitiveInformationPolicyUnits": units,
        "sensitiveInformationPolicyFreeUnits": 0,
        "contextualGroundingPolicyUnits": 0,
    }
    found = [w for w in blocked_words if any(w.lower() in t.lower() for t in texts)]
    if found:
        message = blocked_input_message if source == "INPUT" else blocked_output_message
        words = [{"match": w, "action": "BLOCKED", "detected": True} for w in found]
        return _ok("GUARDRAIL_INTERVENED", [message], {"wordPolicy": {"customWords": words}}, usage)
    cards = [m.group(0) for t in texts for m in CARD.finditer(t)]
    if cards:
        entities = [
            {"match": c, "type": "CREDIT_DEBIT_CARD_NUMBER", "action": "ANONYMIZED"} for c in cards
        ]
        masked = [CARD.sub(MASK, t) for t in texts]
        return _ok(
            "GUARDRAIL_INTERVENED",
            masked,
            {"sensitiveInformationPolicy": {"piiEntities": entities}},
            usage,
        )
    return _ok("NONE", [], {}, usage)


def _ok(
    action: str, outputs: list[str], assessment: dict[str, Any], usage: dict[str, int]
) -> Answer:
    body = {
        "action": action,
        "actionReason": "Guardrail blocked." if action != "NONE" else "No action.",
        "outputs": [{"text": text} for text in outputs],
        "assessments": [assessment] if assessment else [],
        "usage": usage,
    }
    return Answer(200, json.dumps(body).encode())


def _error(status: int, kind: str, message: str) -> Answer:
    return Answer(status, json.dumps({"message": message}).encode(), (("x-amzn-errortype", kind),))
