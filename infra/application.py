"""Builds the CDK app: one DataStack + GatewayStack per stage in cdk.json, cdk-nag on all of them.

Context read here (and only here — constructs take typed arguments):

- `stages`        the per-stage objects (infra/stages.py parses them)
- `stage`         `-c stage=NAME` builds that stage only; default: every stage
- `skipBundling`  `-c skipBundling=true` synthesizes without running pip (quick synth, tests);
                  never deploy such an assembly: its function asset is the bare source folder

Stacks are named `MantleGateway-<stage>-Data` and `MantleGateway-<stage>-Gateway`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Tags

from infra.bundling import layer_code, python_function_code
from infra.constructs.gateway_function import ARCHITECTURE, RUNTIME
from infra.data_stack import DataStack
from infra.gateway_stack import GatewayStack
from infra.nag import add_checks
from infra.packaging import LOCK_FILE
from infra.stages import StageConfig, parse_stages, select_stages

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SKIP_BUNDLING_CONTEXT = "skipBundling"
BUNDLING_STACKS_CONTEXT = "aws:cdk:bundling-stacks"  # CDK's own: [] bundles no stack


@dataclass(frozen=True, slots=True)
class StageStacks:
    config: StageConfig
    data: DataStack
    gateway: GatewayStack


def cdk_json_context(project_root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """cdk.json's `context`, for runs without the cdk CLI (which otherwise passes it in)."""
    document = json.loads((project_root / "cdk.json").read_text(encoding="utf-8"))
    context: dict[str, Any] = document.get("context", {})
    return context


def apply_default_context(app: App, context: Mapping[str, Any]) -> None:
    """Set every key of `context` the app does not already have (CLI `-c` values win)."""
    for key, value in context.items():
        if app.node.try_get_context(key) is None:
            app.node.set_context(key, value)


def _truthy(value: object) -> bool:
    return value is True or str(value).strip().lower() in {"1", "true", "yes", "on"}


def build(app: App, *, project_root: Path = PROJECT_ROOT) -> list[StageStacks]:
    """Add the selected stages' stacks and the cdk-nag checks to `app`."""
    if _truthy(app.node.try_get_context(SKIP_BUNDLING_CONTEXT)):
        app.node.set_context(BUNDLING_STACKS_CONTEXT, [])
    stages = parse_stages(app.node.try_get_context("stages"))
    selected = select_stages(stages, app.node.try_get_context("stage"))

    built = []
    for config in selected:
        # One Code per stack (CDK binds an asset to one stack); CDK stages identical assets once.
        code = python_function_code(
            source_dir=project_root / "functions",
            lock=project_root / LOCK_FILE,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
        )
        runtime_layer = layer_code(layer_dir=project_root / "layers" / "streaming_runtime")
        env = Environment(account=config.account, region=config.region)
        prefix = f"MantleGateway-{config.name}"
        data = DataStack(
            app,
            f"{prefix}-Data",
            config=config,
            env=env,
            description=f"Mantle Gateway {config.name}: keys, usage and limits tables",
            termination_protection=config.deletion_protection,
        )
        gateway = GatewayStack(
            app,
            f"{prefix}-Gateway",
            config=config,
            tables=data.tables,
            code=code,
            layer_code=runtime_layer,
            env=env,
            description=f"Mantle Gateway {config.name}: function, Function URL, REST API, alarms",
        )
        for stack in (data, gateway):
            Tags.of(stack).add("project", "mantle-gateway")
            Tags.of(stack).add("stage", config.name)
        built.append(StageStacks(config=config, data=data, gateway=gateway))

    add_checks(app)
    return built
