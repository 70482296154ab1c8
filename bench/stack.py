"""The servers every network measure runs against, started once per run.

Four processes on loopback: DynamoDB (moto's server mode), the Mantle simulator, the local door
running the gateway (plus the bench's tap), and the floor (`bench.floor`, a bare forwarder that
only the back-to-back measure calls). The bench process creates the tables, issues
the keys and drives the load. Keys have every check on (model patterns, rpm, tpm, a monthly
budget) with limits far above what the bench sends, so each request takes the full path.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from bench import procs
from bench.floor import MARKS_PATH
from mantle_gateway.core.auth import issue_key
from mantle_gateway.settings import Settings
from mantle_gateway.store.dynamo import Dynamo
from mantle_gateway.store.keys import KeyRecord, KeyStore
from mantle_gateway.store.tables import create_tables


@dataclass(frozen=True, slots=True)
class IssuedKey:
    secret: str
    record: KeyRecord


class Stack:
    def __init__(self) -> None:
        self._exit = ExitStack()
        self.dynamodb_url = ""
        self.simulator_url = ""
        self.gateway_url = ""
        self.floor_url = ""
        self.pids: dict[str, int] = {}
        self.settings = Settings()
        self.dynamo: Dynamo | None = None
        self._admin: httpx.Client | None = None

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit.close()

    def _start(self) -> None:
        workdir = Path(self._exit.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        dynamodb = self._child("dynamodb", workdir)
        simulator = self._child("simulator", workdir)
        self.dynamodb_url, self.simulator_url = dynamodb.url, simulator.url
        self.settings = Settings.from_env(
            {
                "AWS_REGION": "us-east-1",
                "MANTLE_ENDPOINT_URL": self.simulator_url,
                "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_url,
            }
        )
        self.dynamo = Dynamo(region="us-east-1", endpoint_url=self.dynamodb_url)
        create_tables(self.dynamo, self.settings)
        gateway = self._child(
            "gateway", workdir, "--simulator", simulator.url, "--dynamodb", dynamodb.url
        )
        self.gateway_url = gateway.url
        floor = self._child(
            "floor", workdir, "--simulator", simulator.url, "--dynamodb", dynamodb.url
        )
        self.floor_url = floor.url
        self._admin = self._exit.enter_context(httpx.Client(base_url=gateway.url, timeout=30))

    def _child(self, role: str, workdir: Path, *args: str) -> procs.Child:
        child = procs.start(role, workdir, *args)
        self._exit.callback(child.stop)
        self.pids[role] = child.pid
        return child

    def fresh_key(self, guardrail: str | None = None) -> IssuedKey:
        """Empty tables and a new key: every measure starts from the same DynamoDB state."""
        assert self.dynamo is not None
        assert self._admin is not None
        self._admin.post(self.dynamodb_url + "/moto-api/reset").raise_for_status()
        create_tables(self.dynamo, self.settings)
        return self.issue_key(guardrail)

    def issue_key(self, guardrail: str | None = None) -> IssuedKey:
        """A new key with every check on; its first request is a key-cache miss."""
        assert self.dynamo is not None
        secret, record = issue_key(
            KeyStore(self.dynamo, self.settings.keys_table),
            name="bench",
            now=datetime.now(UTC),
            monthly_budget_usd=Decimal(1_000_000),
            rpm=1_000_000,
            tpm=1_000_000_000,
            models=("openai.gpt-oss-*", "anthropic.claude-*"),
            guardrail=guardrail,
        )
        return IssuedKey(secret, record)

    def admin(self, action: str) -> dict[str, Any]:
        """The tap's `/__bench/<action>` answer from the gateway process."""
        assert self._admin is not None
        answer = self._admin.get("/__bench/" + action)
        answer.raise_for_status()
        value: dict[str, Any] = answer.json()
        return value

    def floor_marks(self) -> list[list[Any]]:
        """The floor's marks (`bench.tap.CallLog`) since this was last asked."""
        assert self._admin is not None
        answer = self._admin.get(self.floor_url + MARKS_PATH.decode())
        answer.raise_for_status()
        marks: list[list[Any]] = answer.json()
        return marks

    def settle(self, http: httpx.Client, request_id: str) -> None:
        """Return once the gateway has closed `request_id` and written its usage."""
        answer = http.get(self.gateway_url + "/__bench/settled", params={"id": request_id})
        if answer.status_code != 200 or not answer.json().get("settled"):
            raise RuntimeError(f"request {request_id} did not settle: {answer.text}")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by each server process and by this one."""
        used = {role: procs.cpu_seconds(pid) for role, pid in self.pids.items()}
        used["bench client"] = time.process_time()
        return used
