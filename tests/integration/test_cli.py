"""The `mantle-gateway` command as a user runs it: a real process, real DynamoDB (moto server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.support.banner import read_banner

COMMAND = str(Path(sys.executable).parent / "mantle-gateway")


def run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [COMMAND, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def env(dynamodb, settings) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint_url,
        "KEYS_TABLE": settings.keys_table,
        "USAGE_TABLE": settings.usage_table,
        "LIMITS_TABLE": settings.limits_table,
    }


def test_tables_create_is_idempotent(env) -> None:
    first = json.loads(run(env, "tables", "create", "--json").stdout)
    second = json.loads(run(env, "tables", "create", "--json").stdout)
    assert first == second
    assert set(first["tables"]) == {
        "mantle-gateway-keys",
        "mantle-gateway-usage",
        "mantle-gateway-limits",
    }


def test_key_lifecycle(env, gateway) -> None:
    created = json.loads(
        run(
            env,
            "keys",
            "create",
            "--name",
            "finance-bot",
            "--monthly-budget-usd",
            "25.50",
            "--rpm",
            "100",
            "--tpm",
            "50000",
            "--models",
            "openai.gpt-oss-*",
            "--expires",
            "2099-01-01",
            "--json",
        ).stdout
    )
    secret, key_id = created["key"], created["key_id"]
    assert secret.startswith("mgw_")
    shown = json.loads(run(env, "keys", "show", key_id, "--json").stdout)
    assert shown == shown | {
        "key_id": key_id,
        "name": "finance-bot",
        "status": "active",
        "monthly_budget_usd": "25.50",
        "rpm": 100,
        "tpm": 50000,
        "models": ["openai.gpt-oss-*"],
        "expires_at": "2099-01-01",
    }
    assert secret not in json.dumps(shown)
    listed = json.loads(run(env, "keys", "list", "--json").stdout)
    assert key_id in {k["key_id"] for k in listed}
    updated = json.loads(run(env, "keys", "update", key_id, "--rpm", "7", "--json").stdout)
    assert updated["rpm"] == 7 and updated["tpm"] == 50000
    revoked = json.loads(run(env, "keys", "revoke", key_id, "--json").stdout)
    assert revoked["status"] == "revoked"
    assert json.loads(run(env, "keys", "revoke", key_id, "--json").stdout) == revoked


def test_a_keys_project_is_set_used_reported_and_removed(env, gateway, sim) -> None:
    # GIVEN a key created bound to a Mantle project, and one without
    bound = json.loads(
        run(env, "keys", "create", "--name", "p", "--project", "proj_cli01", "--json").stdout
    )
    plain = json.loads(run(env, "keys", "create", "--name", "q", "--json").stdout)
    shown = json.loads(run(env, "keys", "show", bound["key_id"], "--json").stdout)
    assert shown["project"] == "proj_cli01"

    # WHEN both make a request, then finance asks for the month by project
    for key in (bound["key"], plain["key"]):
        answer = httpx.post(
            gateway.url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "openai.gpt-oss-20b", "messages": [{"role": "user", "content": "x"}]},
            timeout=10,
        )
        assert answer.status_code == 200
    assert [seen.headers.get("openai-project") for seen in sim.requests] == ["proj_cli01", None]
    month = time.strftime("%Y-%m", time.gmtime())
    ours = {bound["key_id"], plain["key_id"]}
    end = time.monotonic() + 5
    while True:  # usage is written after the last byte: wait (bounded) for both items
        report = json.loads(
            run(
                env,
                "usage",
                "report",
                "--month",
                month,
                "--group-by",
                "project",
                "--format",
                "json",
            ).stdout
        )
        rows = [
            (p["project"], row["key_id"], row["requests"])
            for p in report["projects"]
            for row in p["by_key_and_model"]
            if row["key_id"] in ours
        ]
        if len(rows) == 2 or time.monotonic() > end:
            break
        time.sleep(0.05)

    # THEN each key's spend sits under the project it named upstream
    assert sorted(rows) == sorted(
        [("proj_cli01", bound["key_id"], 1), ("none", plain["key_id"], 1)]
    )
    assert report["group_by"] == "project"
    csv_out = run(
        env, "usage", "report", "--month", month, "--group-by", "project", "--format", "csv"
    ).stdout
    assert csv_out.splitlines()[0].startswith("month,project,key_id,model,requests,")
    assert f"proj_cli01,{bound['key_id']}," in csv_out

    # AND `--project none` unbinds the key; a malformed id is refused in one line
    updated = run(env, "keys", "update", bound["key_id"], "--project", "none", "--json")
    assert json.loads(updated.stdout)["project"] is None
    done = run(env, "keys", "update", bound["key_id"], "--project", "proj-x", check=False)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--project" in done.stderr


def test_a_keys_alert_thresholds_are_set_cleared_and_reset(env) -> None:
    created = run(env, "keys", "create", "--name", "a", "--alert-at", "100, 50,80,50", "--json")
    key_id = json.loads(created.stdout)["key_id"]

    def shown() -> object:
        return json.loads(run(env, "keys", "show", key_id, "--json").stdout)["alert_at"]

    assert shown() == [50, 80, 100]
    run(env, "keys", "update", key_id, "--alert-at", "none")
    assert shown() == []  # no alerts for this key, whatever the stage's thresholds
    run(env, "keys", "update", key_id, "--alert-at", "default")
    assert shown() is None  # the stage's thresholds apply again
    done = run(env, "keys", "update", key_id, "--alert-at", "50,eighty", check=False)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--alert-at" in done.stderr


def test_update_of_a_revoked_key_is_refused_in_one_line(env) -> None:
    key_id = json.loads(run(env, "keys", "create", "--name", "gone", "--json").stdout)["key_id"]
    run(env, "keys", "revoke", key_id)
    done = run(env, "keys", "update", key_id, "--rpm", "7", check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().count("\n") == 0
    assert f"key {key_id} is revoked" in done.stderr
    shown = json.loads(run(env, "keys", "show", key_id, "--json").stdout)
    assert shown["status"] == "revoked"
    assert shown["rpm"] is None


def test_update_with_nothing_to_change_says_so(env) -> None:
    key_id = json.loads(run(env, "keys", "create", "--name", "same", "--json").stdout)["key_id"]
    done = run(env, "keys", "update", key_id, check=False)
    assert done.returncode == 2
    assert "nothing to change" in done.stderr


def test_bad_settings_fail_in_one_line(env) -> None:
    done = run(env | {"ENABLE_OPENAI_PASSTHROUGH": "sometimes"}, "keys", "list", check=False)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "ENABLE_OPENAI_PASSTHROUGH" in done.stderr


def test_bad_flag_value_fails_in_one_line(env) -> None:
    done = run(env, "keys", "create", "--name", "x", "--expires", "tomorrow", check=False)
    assert done.returncode == 2
    assert "--expires" in done.stderr


def test_serve_with_simulator_works_for_a_newcomer(tmp_path) -> None:
    """No AWS account, no DynamoDB: `serve --upstream simulator` answers with the demo key."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean["HOME"] = str(tmp_path)
    process = subprocess.Popen(
        [COMMAND, "serve", "--upstream", "simulator", "--port", "0"],
        cwd=tmp_path,  # the newcomer's working directory, where the data dir goes
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = read_banner(process)
        assert "SIMULATED" in banner
        url = banner.split("listening on ")[1].split()[0]
        key = banner.split(", new: ")[1].split()[0]
        answer = httpx.post(
            url + "/openai/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "openai.gpt-oss-120b", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"]
        # The banner names the Anthropic base URL, and the demo key works there too.
        assert f"Anthropic base URL: {url}/anthropic" in banner
        claude = anthropic.Anthropic(base_url=url + "/anthropic", api_key=key, max_retries=0)
        message = claude.messages.create(
            model="anthropic.claude-haiku-4-5",
            max_tokens=16,
            messages=[{"role": "user", "content": "hi"}],
        )
        assert message.content[0].text.startswith("tok0 ")  # type: ignore[union-attr]
    finally:
        process.terminate()
        process.wait(timeout=10)
