"""Claude Code, unchanged, through the gateway, as its users run it:
`ANTHROPIC_BASE_URL=<gateway>/anthropic ANTHROPIC_API_KEY=<gateway key> claude -p "…"` (or
`ANTHROPIC_AUTH_TOKEN`, sent as `Authorization: Bearer`).

The binary is the one `make claude-code` installs from npm (pinned in the Makefile; `.ci/run`
installs it); without it these tests skip and say so. It runs with a scratch HOME and working
directory and `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`, so the gateway is all it talks to.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = ROOT / ".venv" / "claude-code" / "node_modules" / "@anthropic-ai"


def find_claude() -> str | None:
    """`CLAUDE_CODE_BIN` if set, else the platform binary npm put beside the wrapper package
    (`claude-code-linux-x64`, `-arm64`, `-musl`…): the first of them that runs here."""
    if os.environ.get("CLAUDE_CODE_BIN"):
        return os.environ["CLAUDE_CODE_BIN"]
    for binary in sorted(INSTALLED.glob("claude-code-*/claude")):
        try:
            probe = subprocess.run([binary, "--version"], capture_output=True, timeout=30)
        except OSError:
            continue
        if probe.returncode == 0:
            return str(binary)
    return None


CLAUDE = find_claude()
pytestmark = pytest.mark.skipif(
    CLAUDE is None, reason="Claude Code is not installed here: `make claude-code` installs it"
)
MANTLE_MODEL = "anthropic.claude-haiku-4-5"


def claude_p(url: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    assert CLAUDE is not None
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": url + "/anthropic",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        **env,
    }
    return subprocess.run(
        [CLAUDE, "-p", "say hi"],
        env=environment,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=90,
    )


def messages_seen(sim):  # type: ignore[no-untyped-def]
    return [seen for seen in sim.requests if seen.path == "/anthropic/v1/messages"]


def test_claude_code_with_a_gateway_api_key(gateway, new_key, sim, usage_items, tmp_path) -> None:
    secret, record = new_key()
    done = claude_p(gateway.url, tmp_path, ANTHROPIC_API_KEY=secret)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tok0 tok1 tok2" in done.stdout  # the simulator's answer, streamed through
    sent = messages_seen(sim)
    assert sent, [seen.path for seen in sim.requests]
    for seen in sent:
        assert seen.signature_ok and seen.query == "beta=true"
        assert seen.headers["anthropic-version"] == "2023-06-01"
        assert "claude-code-20250219" in seen.headers["anthropic-beta"].split(",")
        assert "x-api-key" not in seen.headers
        assert all(secret not in value for value in seen.headers.values())
        assert seen.json()["stream"] is True
    items = usage_items(record.key_id, count=len(sent))
    assert len(items) == len(sent)
    assert {item["model"] for item in items} == {seen.json()["model"] for seen in sent}
    for item in items:
        assert (item["api_surface"], item["stream"], item["status"]) == ("messages", True, "ok")
        assert item["input_tokens"] > 0 and item["output_tokens"] == 8


def test_claude_code_with_an_auth_token_and_a_mantle_model(
    gateway, new_key, sim, usage_items, tmp_path
) -> None:
    secret, record = new_key(models=("anthropic.claude-*",))
    done = claude_p(
        gateway.url, tmp_path, ANTHROPIC_AUTH_TOKEN=secret, ANTHROPIC_MODEL=MANTLE_MODEL
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tok0 tok1 tok2" in done.stdout
    sent = messages_seen(sim)
    assert [seen.json()["model"] for seen in sent] == [MANTLE_MODEL] * len(sent)
    items = usage_items(record.key_id, count=len(sent))
    assert {item["model"] for item in items} == {MANTLE_MODEL}


def test_claude_code_with_a_wrong_key_stops_at_once(gateway, sim, tmp_path) -> None:
    """The refusal says `x-should-retry: false`; without it Claude Code retries a 401 for
    minutes (measured: seven attempts in 40 s, still going)."""
    done = claude_p(gateway.url, tmp_path, ANTHROPIC_API_KEY="mgw_" + "x" * 43)
    assert done.returncode != 0
    assert "401" in done.stdout + done.stderr
    assert messages_seen(sim) == []
