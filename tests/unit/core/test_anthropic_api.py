"""The Anthropic family: the headers that go up to Mantle, and its rate-limit headers."""

from datetime import UTC, datetime

import pytest

from mantle_gateway.core.anthropic_api import AnthropicFamily
from mantle_gateway.core.openai_api import OpenAIFamily
from mantle_gateway.errors import InvalidRequestError
from mantle_gateway.store.limits import RateState
from mantle_gateway.upstream.routing import PrefixRouter

CLAUDE_CODE_BETAS = "claude-code-20250219,interleaved-thinking-2025-05-14,effort-2025-11-24"


def test_anthropic_headers_go_up_and_client_credentials_never_do() -> None:
    headers = AnthropicFamily().forwarded_headers(
        {
            "x-api-key": "mgw_secret",
            "authorization": "Bearer mgw_secret",
            "anthropic-version": "2023-06-01",
            "anthropic-beta": CLAUDE_CODE_BETAS,
            "anthropic-workspace-id": "proj_123",
            "x-amzn-bedrock-trace": "ENABLED",
            "openai-project": "proj_other",
            "cookie": "a=b",
            "x-app": "cli",
        }
    )
    assert headers == {
        "anthropic-version": "2023-06-01",
        "anthropic-beta": CLAUDE_CODE_BETAS,
        "anthropic-workspace-id": "proj_123",
        "x-amzn-bedrock-trace": "ENABLED",
    }


@pytest.mark.parametrize("sent", [{}, {"anthropic-version": ""}])
def test_a_missing_version_is_set_to_2023_06_01(sent: dict[str, str]) -> None:
    assert AnthropicFamily().forwarded_headers(sent) == {"anthropic-version": "2023-06-01"}


def test_a_beta_header_that_cannot_be_forwarded_is_refused() -> None:
    with pytest.raises(InvalidRequestError):
        AnthropicFamily().forwarded_headers({"anthropic-beta": "a\x01b"})


def test_openai_paths_forward_no_anthropic_header() -> None:
    sent = {"anthropic-version": "2023-06-01", "openai-project": "proj_1"}
    assert OpenAIFamily(PrefixRouter(())).forwarded_headers(sent) == {"openai-project": "proj_1"}


def test_rate_headers_as_anthropic_sends_them_with_rfc3339_reset() -> None:
    now = datetime(2026, 12, 2, 10, 15, 42, 500_000, tzinfo=UTC)
    rate = RateState(rpm=60, tpm=1000, requests=5, tokens=1200, reset_seconds=18)
    assert AnthropicFamily().rate_headers(rate, now) == [
        ("anthropic-ratelimit-requests-limit", "60"),
        ("anthropic-ratelimit-requests-remaining", "55"),
        ("anthropic-ratelimit-requests-reset", "2026-12-02T10:16:00Z"),
        ("anthropic-ratelimit-tokens-limit", "1000"),
        ("anthropic-ratelimit-tokens-remaining", "0"),
        ("anthropic-ratelimit-tokens-reset", "2026-12-02T10:16:00Z"),
    ]


def test_only_the_limits_a_key_has_are_reported() -> None:
    now = datetime(2026, 12, 2, 10, 15, 0, tzinfo=UTC)
    rate = RateState(rpm=None, tpm=500, requests=1, tokens=0, reset_seconds=60)
    names = [name for name, _ in AnthropicFamily().rate_headers(rate, now)]
    assert names == [
        "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
    ]
