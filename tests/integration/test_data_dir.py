"""`mantle-gateway serve` keeps its embedded DynamoDB in a data directory: keys, limits and usage
survive a restart (SIGTERM or Ctrl-C), the demo key is made once and shown again, a corrupt
snapshot stops serve with one line, and `--ephemeral` keeps nothing. Real processes, as a user
runs them; the periodic save is checked in process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from mantle_gateway.cli.data_dir import DataDir
from mantle_gateway.cli.local_env import EmbeddedDynamoDB
from mantle_gateway.settings import Settings
from mantle_gateway.store.dynamo import Dynamo
from tests.support.banner import read_banner

COMMAND = str(Path(sys.executable).parent / "mantle-gateway")
DEMO = re.compile(r"Demo key \((key_\w+)\)(, new|, shown once)?: (\S+)")


@dataclass
class Served:
    process: subprocess.Popen[str]
    banner: str

    @property
    def url(self) -> str:
        return self.banner.split("listening on ")[1].split()[0]

    @property
    def dynamodb(self) -> str:
        return self.banner.split("DynamoDB: embedded (moto) at ")[1].split(";")[0]

    @property
    def demo(self) -> tuple[str, str, bool]:
        """(key id, secret, whether it was made on this start)."""
        found = DEMO.search(self.banner)
        assert found, self.banner
        return found[1], found[3], found[2] is not None

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [COMMAND, *args],
            env={**self.process_env(), "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def process_env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL_DYNAMODB"}

    def chat(self, key: str) -> httpx.Response:
        return httpx.post(
            self.url + "/openai/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "openai.gpt-oss-120b", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )

    def stop(self, how: signal.Signals = signal.SIGTERM) -> int:
        self.process.send_signal(how)
        return self.process.wait(timeout=30)


@pytest.fixture
def serve(tmp_path: Path):
    """Start `serve --upstream simulator` in `tmp_path` as its working directory."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> Served:
        env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL_DYNAMODB"}
        process = subprocess.Popen(
            [COMMAND, "serve", "--upstream", "simulator", "--port", "0", *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(process)
        return Served(process, read_banner(process))

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_keys_limits_and_usage_survive_a_restart(serve, tmp_path: Path) -> None:
    # GIVEN serve in a fresh working directory, a key with limits and some usage
    first = serve()
    demo_id, demo_secret, made = first.demo
    assert made
    created = json.loads(
        first.cli(
            "keys", "create", "--name", "ci", "--rpm", "50", "--monthly-budget-usd", "3", "--json"
        )
    )
    for _ in range(2):
        assert first.chat(created["key"]).status_code == 200
    assert first.chat(demo_secret).status_code == 200

    # WHEN it is stopped with SIGTERM and started again
    assert first.stop() == 0
    second = serve()

    # THEN the data dir is the default one, the demo key is the same, the key and its limits
    # are there, and the usage report shows the requests made before the restart
    data = tmp_path / ".mantle-gateway"
    assert (data / "dynamodb.json").is_file()
    assert second.demo == (demo_id, demo_secret, False)
    assert "items restored" in second.banner
    assert second.chat(created["key"]).status_code == 200
    shown = json.loads(second.cli("keys", "show", created["key_id"], "--json"))
    assert (shown["rpm"], shown["monthly_budget_usd"]) == (50, "3")
    month = datetime.now(UTC).strftime("%Y-%m")
    report = json.loads(
        second.cli("usage", "report", "--month", month, "--key", created["key_id"], "--format=json")
    )
    (key_report,) = report["keys"]
    assert key_report["requests"] == 3  # two before the restart, one after
    assert key_report["spend_counter_usd"] == key_report["cost_usd"]

    # AND the demo secret is kept only in its own owner-only file, never in the tables
    assert (data / "demo-key").read_text().strip() == demo_secret
    assert (data / "demo-key").stat().st_mode & 0o777 == 0o600
    assert (data / "dynamodb.json").stat().st_mode & 0o777 == 0o600
    assert demo_secret not in (data / "dynamodb.json").read_text()
    assert created["key"] not in (data / "dynamodb.json").read_text()

    # WHEN the demo key is revoked and serve restarted (with Ctrl-C this time)
    second.cli("keys", "revoke", demo_id)
    assert second.stop(signal.SIGINT) == 0  # Ctrl-C drains and exits cleanly
    third = serve()

    # THEN a new demo key is made, and the other key still works
    new_id, new_secret, made = third.demo
    assert made and new_id != demo_id
    assert third.chat(new_secret).status_code == 200
    assert third.chat(demo_secret).status_code == 401


BAD_ITEM = json.dumps(
    {
        "format": "mantle-gateway embedded DynamoDB snapshot",
        "version": 1,
        "tables": [
            {
                "account": "123456789012",
                "region": "us-east-1",
                "name": "mantle-gateway-limits",
                "key_schema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "attributes": [{"AttributeName": "pk", "AttributeType": "S"}],
                "global_indexes": [],
                "local_indexes": [],
                "ttl": {"TimeToLiveStatus": "DISABLED"},
                "items": [{"pk": {"N": "7"}}],
            }
        ],
    }
)


def test_a_corrupt_snapshot_stops_serve_with_one_line(tmp_path: Path) -> None:
    for content in ('{"tables": [', '{"some": "other json"}', "\x00\x01 not json", BAD_ITEM):
        data = tmp_path / "data"
        data.mkdir(exist_ok=True)
        (data / "dynamodb.json").write_text(content)
        done = subprocess.run(
            [COMMAND, "serve", "--port", "0", "--data-dir", str(data)],
            env={k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL_DYNAMODB"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, (content, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1, done.stderr
        assert str(data / "dynamodb.json") in done.stderr
        assert "Traceback" not in done.stderr + done.stdout
        assert (data / "dynamodb.json").read_text() == content, "the snapshot is left as it was"


def test_ephemeral_keeps_nothing(serve, tmp_path: Path) -> None:
    served = serve("--ephemeral")
    assert "shown once" in served.banner
    assert served.chat(served.demo[1]).status_code == 200
    assert served.stop() == 0
    assert list(tmp_path.iterdir()) == []


def test_the_saver_writes_only_when_something_changed(
    dynamodb: EmbeddedDynamoDB, settings: Settings, dynamo: Dynamo, tmp_path: Path
) -> None:
    # GIVEN a data dir kept by a saver that ticks often
    data = DataDir.open(tmp_path / "kept")
    saver = data.keep(dynamodb, every=0.05)
    try:
        # WHEN DynamoDB serves a write, THEN a snapshot with it appears without waiting for exit
        dynamo.client.put_item(
            TableName=settings.limits_table, Item={"pk": {"S": "saver-test"}, "n": {"N": "1"}}
        )
        end = time.monotonic() + 10
        while not data.snapshot_file.exists() and time.monotonic() < end:
            time.sleep(0.02)
        assert '"saver-test"' in data.snapshot_file.read_text()
        # AND with nothing new, nothing is written again
        dynamo.client.get_item(TableName=settings.limits_table, Key={"pk": {"S": "saver-test"}})
        deadline = time.monotonic() + 10
        while saver.save_if_changed() and time.monotonic() < deadline:
            pass  # a tick may have been between the write and this check
        assert saver.save_if_changed() is False
    finally:
        saver.close()
    assert not list(data.path.glob(".*.tmp")), "no temporary file is left behind"
