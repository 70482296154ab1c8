"""ApplyGuardrail answers read into verdicts, and the settings that name a guardrail."""

from __future__ import annotations

import json

import pytest

from mantle_gateway.errors import ConfigError
from mantle_gateway.settings import Settings
from mantle_gateway.simulator import guardrail as sim_guardrail
from mantle_gateway.upstream.guardrail import GuardrailRef, GuardrailUnavailable, read_verdict


def _apply(source: str, *texts: str) -> bytes:
    body = json.dumps({"source": source, "content": [{"text": {"text": t}} for t in texts]})
    answer = sim_guardrail.apply(
        body.encode(),
        blocked_words=["forbidden-word"],
        blocked_input_message="no (input)",
        blocked_output_message="no (output)",
    )
    assert answer.status == 200
    return answer.body


def test_block_mask_and_pass_as_the_simulator_answers_them() -> None:
    blocked = read_verdict(_apply("OUTPUT", "a forbidden-word here", "x"), 2)
    assert (blocked.intervened, blocked.blocked, blocked.outputs) == (True, True, ("no (output)",))
    masked = read_verdict(_apply("INPUT", "pay 4111-1111-1111-1111 now", "none here"), 2)
    assert (masked.intervened, masked.blocked) == (True, False)
    assert masked.outputs == ("pay {CREDIT_DEBIT_CARD_NUMBER} now", "none here")
    clean = read_verdict(_apply("INPUT", "hello"), 1)
    assert (clean.intervened, clean.action, clean.outputs) == (False, "none", ())
    assert clean.units == 2  # content and sensitive-information units; word units are free


def test_unreadable_or_unmatched_answers_are_failures_not_verdicts() -> None:
    for content in (b"not json", b"[]", b'{"action": "MAYBE"}'):
        with pytest.raises(GuardrailUnavailable):
            read_verdict(content, 1)
    anonymized_one_of_two = json.dumps(
        {
            "action": "GUARDRAIL_INTERVENED",
            "outputs": [{"text": "{EMAIL}"}],
            "assessments": [
                {
                    "sensitiveInformationPolicy": {
                        "piiEntities": [{"type": "EMAIL", "action": "ANONYMIZED", "match": "a@b.c"}]
                    }
                }
            ],
        }
    ).encode()
    with pytest.raises(GuardrailUnavailable):
        read_verdict(anonymized_one_of_two, 2)


def test_refs_parse_ids_arns_and_versions() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:guardrail/abc123"
    assert GuardrailRef.parse(f"{arn}:DRAFT") == GuardrailRef(arn, "DRAFT")
    assert str(GuardrailRef.parse("abc:12")) == "abc:12"
    for bad in ("abc", "abc:0", "ABC:1", "abc:draft", "abc:1:2", ":1"):
        assert GuardrailRef.parse(bad) is None


def test_settings_name_the_endpoint_default_and_modes() -> None:
    settings = Settings.from_env({"MANTLE_REGION": "eu-west-1"})
    assert (
        settings.bedrock_runtime_endpoint_url == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    )
    assert settings.guardrail_failure_mode == "closed"
    assert settings.guardrail_stream_window_chars == 1000
    custom = Settings.from_env(
        {
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "http://127.0.0.1:9/",
            "GUARDRAIL_DEFAULT": "abc:2",
            "GUARDRAIL_FAILURE_MODE": "open",
            "PRICES_JSON": '{"bedrock.guardrail": {"per_1k_text_units": 0.1}}',
        }
    )
    assert custom.bedrock_runtime_endpoint_url == "http://127.0.0.1:9"
    assert (custom.guardrail_default, custom.guardrail_failure_mode) == ("abc:2", "open")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"GUARDRAIL_DEFAULT": "abc"}, "GUARDRAIL_DEFAULT"),
        ({"GUARDRAIL_FAILURE_MODE": "sometimes"}, "GUARDRAIL_FAILURE_MODE"),
        ({"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "ftp://x"}, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"),
        ({"GUARDRAIL_STREAM_WINDOW_CHARS": "3"}, "GUARDRAIL_STREAM_WINDOW_CHARS"),
        ({"PRICES_JSON": '{"bedrock.guardrail": {"input": 1}}'}, "PRICES_JSON"),
    ],
)
def test_bad_guardrail_settings_stop_with_one_line(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert message.startswith(variable + ":")
    assert "\n" not in message
