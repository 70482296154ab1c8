"""One synthesis per test run: every stage of cdk.json plus a test stage, bundling switched off.

`import aws_cdk` and a synthesis cost seconds each (jsii starts a Node process), so the app is
built and synthesized once per session and every infra test reads the same templates.

Stages synthesized: `dev` and `prod` exactly as cdk.json defines them, and `flagoff`, a test-only
stage that turns both passthroughs off and sets every optional field (explicit account/region,
Mantle region, endpoint and projects, alert thresholds, alarms with an e-mail), so the less
common branches are synthesized too. Context `aws:cdk:bundling-stacks: []` tells CDK to bundle
no stack; the bundler is replaced by a recorder for the duration of the synthesis so the tests
can prove pip never ran.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# Node 20 (this machine) is past jsii's support date; the banner is noise in test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk.assertions import Template

from infra.application import StageStacks, build, cdk_json_context
from infra.bundling import LocalPythonBundling

FLAGOFF_STAGE: dict[str, Any] = {
    "enableOpenaiPassthrough": False,
    "enableAnthropicPassthrough": False,
    "logRetentionDays": 14,
    "removalPolicy": "destroy",
    "pitr": True,
    "deletionProtection": False,
    "alarms": True,
    "alarmEmail": "ops@example.com",
    "defaultKeyLimits": {"rpm": 10, "tpm": 10000},
    "lambdaMemoryMb": 512,
    "lambdaTimeoutSeconds": 120,
    "account": "123456789012",
    "region": "eu-west-1",
    "mantleRegion": "eu-central-1",
    "mantleEndpointUrl": "https://mantle.internal.example.com",
    "corsAllowedOrigins": ["https://app.example.com"],
    "mantleProjects": ["default", "proj_finance01"],
    "budgetAlertThresholds": [90, 25, 90],
}


@dataclass
class Synthesis:
    """The synthesized app and helpers to read its templates."""

    app: cdk.App
    stages: dict[str, StageStacks]
    bundler_calls: list[str]
    _templates: dict[tuple[str, str], Template] = field(default_factory=dict)

    def template(self, stage: str, kind: str) -> Template:
        """kind: 'data' or 'gateway'."""
        if (stage, kind) not in self._templates:
            stacks = self.stages[stage]
            stack = stacks.data if kind == "data" else stacks.gateway
            self._templates[(stage, kind)] = Template.from_stack(stack)
        return self._templates[(stage, kind)]

    def resources(self, stage: str, kind: str, resource_type: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = self.template(stage, kind).find_resources(resource_type)
        return found

    def one(self, stage: str, kind: str, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(stage, kind, resource_type)
        assert len(found) == 1, f"{stage}/{kind}: {len(found)} {resource_type}"
        return next(iter(found.items()))

    def function(self, stage: str) -> dict[str, Any]:
        return self.one(stage, "gateway", "AWS::Lambda::Function")[1]["Properties"]

    def environment(self, stage: str) -> dict[str, Any]:
        env: dict[str, Any] = self.function(stage)["Environment"]["Variables"]
        return env

    def statements(self, stage: str) -> list[dict[str, Any]]:
        """Every statement of every identity policy in the gateway stack."""
        out: list[dict[str, Any]] = []
        for policy in self.resources(stage, "gateway", "AWS::IAM::Policy").values():
            out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
        return out

    def table_logical_ids(self, stage: str) -> dict[str, str]:
        """{'keys'|'usage'|'limits': logical id in the data stack}, by the physical name."""
        ids = {}
        for logical_id, table in self.resources(stage, "data", "AWS::DynamoDB::Table").items():
            role = table["Properties"]["TableName"].split("-")[2]
            ids[role] = logical_id
        return ids


@pytest.fixture(scope="session")
def project_root() -> Path:
    return Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def synth() -> Synthesis:
    calls: list[str] = []

    def recording_try_bundle(
        self: LocalPythonBundling, output_dir: str, *, image: cdk.DockerImage, **_: Any
    ) -> bool:
        calls.append(output_dir)
        raise AssertionError("bundling must not run when aws:cdk:bundling-stacks is []")

    context = cdk_json_context()
    context["stages"] = {**context["stages"], "flagoff": FLAGOFF_STAGE}
    context["aws:cdk:bundling-stacks"] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalPythonBundling, "try_bundle", recording_try_bundle)
        app = cdk.App(context=context)
        built = build(app)
        app.synth()  # runs the cdk-nag plugin: any unacknowledged finding raises here
    return Synthesis(app=app, stages={s.config.name: s for s in built}, bundler_calls=calls)
